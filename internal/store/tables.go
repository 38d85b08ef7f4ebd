package store

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Table names.
const (
	TableTenants              = "tenants"
	TableTokens               = "tokens"
	TableRestores             = "restores"
	TableHosts                = "hosts"
	TableRecoveryPoints       = "recovery_points"
	TableServers              = "servers"
	TableIdempotency          = "idempotency"
	TableVerifications        = "verifications"
	TableGuests               = "guests"
	TableSnapshots            = "snapshots"
	TableVerificationPolicies = "verification_policies"
	TableJoinTokens           = "join_tokens"
	TableRevocations          = "revocations"
	TableInventory            = "inventory"
	TableAudit                = "audit"
	TableScanMarks            = "scan_marks"
)

// table is one table of the state store: its name, its indexes (the
// unique "id" index first of all) and the field of the raft Snapshot
// message that carries its objects. Adding a table is adding one entry to
// tables: the schema, the snapshot's write and read and the rebuild after
// a snapshot restore all come from it.
type table struct {
	name    string
	field   protoreflect.Name
	indexes []*memdb.IndexSchema
	// watch, when set, keeps every change of the table in the event log
	// as this kind.
	watch Kind
}

// tables is the registry of every table.
var tables = []table{
	{name: TableTenants, field: "tenants", indexes: []*memdb.IndexSchema{idIndex()}},
	{name: TableTokens, field: "tokens", indexes: tokenIndexes()},
	{name: TableRestores, field: "restores", indexes: restoreIndexes(), watch: KindRestore},
	{name: TableHosts, field: "hosts", indexes: []*memdb.IndexSchema{idIndex()}, watch: KindHost},
	{name: TableRecoveryPoints, field: "recovery_points", indexes: recoveryPointIndexes()},
	{name: TableServers, field: "servers", indexes: []*memdb.IndexSchema{idIndex()}},
	{name: TableIdempotency, field: "idempotency_keys", indexes: idempotencyIndexes()},
	{name: TableVerifications, field: "verifications", indexes: verificationIndexes(), watch: KindVerification},
	{name: TableVerificationPolicies, field: "verification_policies", indexes: []*memdb.IndexSchema{idIndex(), fieldIndex("tenant", "Tenant")}},
	{name: TableGuests, field: "guests", indexes: []*memdb.IndexSchema{idIndex(), fieldIndex("tenant", "Tenant"),
		fieldIndex(indexHost, "HostId"), fieldIndex(indexUUID, "Uuid")}},
	{name: TableSnapshots, field: "snapshots", indexes: snapshotIndexes(), watch: KindSnapshot},
	{name: TableJoinTokens, field: "join_tokens", indexes: []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &nestedIDIndexer{id: func(o any) string { return o.(*raftv1.StoredJoinToken).GetToken().GetId() }}},
	}},
	{name: TableRevocations, field: "revocations", indexes: []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "HostId"}},
	}},
	{name: TableInventory, field: "inventory", indexes: []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "HostId"}, &memdb.StringFieldIndex{Field: "Uuid"},
		}}},
		fieldIndex(indexHost, "HostId"), fieldIndex(indexUUID, "Uuid"),
	}},
	{name: TableScanMarks, field: "scan_marks", indexes: []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "HostId"}, &memdb.StringFieldIndex{Field: "RecoveryPointId"},
		}}},
	}},
	{name: TableAudit, field: "audit_events", indexes: []*memdb.IndexSchema{idIndex(),
		// Events without a time (entries proposed without an audit context)
		// are never due.
		{Name: indexCreated, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			ev := o.(*restorev1.AuditEvent)
			return stamp(ev.Time), ev.Time != nil
		}}},
	}, watch: KindAudit},
}

// watched maps each watched table to its kind.
var watched = func() map[string]Kind {
	m := map[string]Kind{}
	for _, t := range tables {
		if t.watch != 0 {
			m[t.name] = t.watch
		}
	}
	return m
}()

func idIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Id"}}
}

func fieldIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Schema is the memdb schema of the state store.
func Schema() *memdb.DBSchema {
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, t := range tables {
		ts := &memdb.TableSchema{Name: t.name, Indexes: map[string]*memdb.IndexSchema{}}
		for _, ix := range t.indexes {
			ts.Indexes[ix.Name] = ix
		}
		s.Tables[t.name] = ts
	}
	s.Tables[tableRestoreCounts] = countsSchema()
	s.Tables[tableUsage] = usageSchema()
	for _, ts := range eventSchemas() {
		s.Tables[ts.Name] = ts
	}
	return s
}

// TableNames lists every table.
func TableNames() []string {
	out := make([]string, 0, len(tables))
	for _, t := range tables {
		out = append(out, t.name)
	}
	return out
}

func (t table) list(snap *raftv1.Snapshot) protoreflect.List {
	fd := snap.ProtoReflect().Descriptor().Fields().ByName(t.field)
	if fd == nil || !fd.IsList() || fd.Message() == nil {
		panic(fmt.Sprintf("store: table %s names %q, which is not a repeated message field of raft Snapshot", t.name, t.field))
	}
	return snap.ProtoReflect().Mutable(fd).List()
}

// Dump writes every object of every table into a raft Snapshot message.
func (r *Reader) Dump() *raftv1.Snapshot {
	snap := &raftv1.Snapshot{AppliedIndex: r.AppliedIndex()}
	for _, t := range tables {
		list := t.list(snap)
		for _, o := range r.all(t.name, "id") {
			list.Append(protoreflect.ValueOfMessage(o.(proto.Message).ProtoReflect()))
		}
	}
	return snap
}

// Load builds a fresh database holding every object of snap.
func Load(snap *raftv1.Snapshot) (*memdb.MemDB, error) {
	db, err := NewDB()
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for _, t := range tables {
		list := t.list(snap)
		for i := 0; i < list.Len(); i++ {
			if err := txn.Insert(t.name, list.Get(i).Message().Interface()); err != nil {
				return nil, fmt.Errorf("restore %s: %w", t.name, err)
			}
		}
	}
	// The derived counts, from what was loaded.
	counts := map[restorev1.RestoreState]int{}
	for _, x := range snap.Restores {
		counts[x.State]++
	}
	for state, n := range counts {
		if err := txn.Insert(tableRestoreCounts, &stateCount{State: int(state), N: n}); err != nil {
			return nil, err
		}
	}
	if err := loadUsage(txn); err != nil {
		return nil, err
	}
	if err := loadEventLog(txn, snap.AppliedIndex); err != nil {
		return nil, err
	}
	txn.Commit()
	return db, nil
}
