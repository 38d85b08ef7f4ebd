package store

import "github.com/hashicorp/go-memdb"

// Table names.
const (
	TableTenants        = "tenants"
	TableTokens         = "tokens"
	TableRestores       = "restores"
	TableHosts          = "hosts"
	TableRecoveryPoints = "recovery_points"
	TableServers        = "servers"
	TableIdempotency    = "idempotency"
	TableVerifications  = "verifications"
	TableGuests         = "guests"
	// TableSnapshots holds snapshots of protected guests by id.
	TableSnapshots = "snapshots"
	// TableVerificationPolicies holds policies by id "<tenant>/<asset>".
	TableVerificationPolicies = "verification_policies"
)

func idIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Id"}}
}

func fieldIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Schema is the memdb schema of the state store.
func Schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableTenants: {Name: TableTenants, Indexes: map[string]*memdb.IndexSchema{"id": idIndex()}},
		TableTokens: {Name: TableTokens, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &tokenIDIndexer{}},
		}},
		TableRestores: {Name: TableRestores, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
			"host":   fieldIndex("host", "HostId"),
			"state":  {Name: "state", Indexer: &memdb.IntFieldIndex{Field: "State"}},
		}},
		TableHosts: {Name: TableHosts, Indexes: map[string]*memdb.IndexSchema{"id": idIndex()}},
		TableRecoveryPoints: {Name: TableRecoveryPoints, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
		}},
		TableServers: {Name: TableServers, Indexes: map[string]*memdb.IndexSchema{"id": idIndex()}},
		TableGuests: {Name: TableGuests, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
		}},
		TableSnapshots: {Name: TableSnapshots, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
			"host":   fieldIndex("host", "HostId"),
			"guest":  fieldIndex("guest", "GuestId"),
		}},
		TableVerificationPolicies: {Name: TableVerificationPolicies, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
		}},
		TableVerifications: {Name: TableVerifications, Indexes: map[string]*memdb.IndexSchema{
			"id":     idIndex(),
			"tenant": fieldIndex("tenant", "Tenant"),
		}},
		TableIdempotency: {Name: TableIdempotency, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Kind"},
				&memdb.StringFieldIndex{Field: "Tenant"},
				&memdb.StringFieldIndex{Field: "RequestId"},
			}, AllowMissing: true}},
		}},
	}}
}
