package store

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/protobuf/proto"
)

// tableUsage is derived: what each tenant's restores and snapshots hold
// now (those lifecycle says count toward its quota), kept in step by
// Txn.Insert and Txn.Delete in the same transaction as each restore or
// snapshot write and rebuilt by Load, so a create's quota check reads one
// row instead of walking the tenant's restores. It is not in raft
// snapshots.
const tableUsage = "tenant_usage"

type tenantUsage struct {
	// Key is usageKey(tenant): memdb's id may not be empty, a tenant id
	// may (objects made by tests and old entries).
	Key string
	U   *restorev1.TenantUsage
}

func usageKey(tenant string) string { return "t:" + tenant }

// usageTables are the tables whose objects count toward a tenant's usage
// (usageOf says how much).
var usageTables = map[string]bool{TableRestores: true, TableSnapshots: true}

func usageSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableUsage, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
	}}
}

// usageOf is what obj (a restore or a snapshot) adds to its tenant's
// usage, and the tenant; ok is false when it adds nothing.
func usageOf(obj any) (tenant string, u *restorev1.TenantUsage, ok bool) {
	switch x := obj.(type) {
	case *restorev1.Restore:
		if !lifecycle.CountsTowardQuota(x) {
			return "", nil, false
		}
		u = &restorev1.TenantUsage{}
		lifecycle.AddToUsage(u, x)
		return x.Tenant, u, true
	case *restorev1.Snapshot:
		if !lifecycle.SnapshotCountsTowardQuota(x) {
			return "", nil, false
		}
		return x.Tenant, &restorev1.TenantUsage{Snapshots: 1}, true
	}
	return "", nil, false
}

// adjustUsage takes prev's share out of its tenant's usage and adds
// next's (either may be nil); a change that leaves the share as it was
// (most of them: a restore placed, booted, running) writes nothing.
func adjustUsage(txn *memdb.Txn, prev, next any) error {
	pt, pu, pok := usageOf(prev)
	nt, nu, nok := usageOf(next)
	if pok && nok && pt == nt && proto.Equal(pu, nu) {
		return nil
	}
	for _, c := range []struct {
		ok     bool
		tenant string
		d      *restorev1.TenantUsage
		sign   int64
	}{{pok, pt, pu, -1}, {nok, nt, nu, 1}} {
		if !c.ok {
			continue
		}
		tenant, d := c.tenant, c.d
		cur := &restorev1.TenantUsage{}
		if o, err := txn.First(tableUsage, "id", usageKey(tenant)); err != nil {
			return err
		} else if o != nil {
			cur = proto.Clone(o.(*tenantUsage).U).(*restorev1.TenantUsage)
		}
		cur.Restores += int32(c.sign) * d.Restores
		cur.Vcpus += int32(c.sign) * d.Vcpus
		cur.MemoryMib += c.sign * d.MemoryMib
		cur.Snapshots += int32(c.sign) * d.Snapshots
		if cur.Restores < 0 || cur.Vcpus < 0 || cur.MemoryMib < 0 || cur.Snapshots < 0 {
			return fmt.Errorf("tenant %s's usage would go below zero: %v", tenant, cur)
		}
		if err := txn.Insert(tableUsage, &tenantUsage{Key: usageKey(tenant), U: cur}); err != nil {
			return err
		}
	}
	return nil
}

// loadUsage rebuilds every tenant's usage from the restores and snapshots
// in txn.
func loadUsage(txn *memdb.Txn) error {
	for _, table := range []string{TableRestores, TableSnapshots} {
		it, err := txn.Get(table, "id")
		if err != nil {
			return err
		}
		var objs []any
		for o := it.Next(); o != nil; o = it.Next() {
			objs = append(objs, o)
		}
		for _, o := range objs {
			if err := adjustUsage(txn, nil, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// TenantUsage is what a tenant's restores and snapshots hold now (a copy
// the caller may change).
func (r *Reader) TenantUsage(tenant string) *restorev1.TenantUsage {
	if o := r.first(tableUsage, "id", usageKey(tenant)); o != nil {
		return proto.Clone(o.(*tenantUsage).U).(*restorev1.TenantUsage)
	}
	return &restorev1.TenantUsage{}
}

// TenantWithUsage is a copy of tenant t with its usage filled in.
func (r *Reader) TenantWithUsage(t *restorev1.Tenant) *restorev1.Tenant {
	out := proto.Clone(t).(*restorev1.Tenant)
	out.Usage = r.TenantUsage(t.Id)
	return out
}
