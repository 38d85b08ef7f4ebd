package store

import (
	"sort"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
)

// Reader reads one consistent view of the state. Pass a WatchSet to be told
// when anything read changes; nil is fine.
type Reader struct {
	txn     *memdb.Txn
	ws      memdb.WatchSet
	visited int
}

// Read returns a Reader over the current state. When ws is not nil, the
// store's Abandoned channel is added to it.
func (s *Store) Read(ws memdb.WatchSet) *Reader {
	if ws != nil {
		ws.Add(s.Abandoned())
	}
	return &Reader{txn: s.ReadTxn(), ws: ws}
}

// WatchTables adds one channel per table to ws that fires on any change to
// that table: cheaper than watching every object read.
func (s *Store) WatchTables(ws memdb.WatchSet, tables ...string) {
	ws.Add(s.Abandoned())
	txn := s.ReadTxn()
	for _, t := range tables {
		if it, err := txn.Get(t, "id"); err == nil {
			ws.Add(it.WatchCh())
		}
	}
}

// ReaderFor wraps an open transaction (used by the FSM inside a write).
func ReaderFor(txn *Txn) *Reader { return &Reader{txn: txn.Txn} }

func (r *Reader) first(table, index string, args ...any) any {
	ch, obj, err := r.txn.FirstWatch(table, index, args...)
	if err != nil {
		return nil
	}
	if r.ws != nil {
		r.ws.Add(ch)
	}
	if obj != nil {
		r.visited++
	}
	return obj
}

func (r *Reader) all(table, index string, args ...any) []any {
	it, err := r.txn.Get(table, index, args...)
	if err != nil {
		return nil
	}
	if r.ws != nil {
		r.ws.Add(it.WatchCh())
	}
	var out []any
	for obj := it.Next(); obj != nil; obj = it.Next() {
		r.visited++
		out = append(out, obj)
	}
	return out
}

// Tenant returns a tenant or nil.
func (r *Reader) Tenant(id string) *restorev1.Tenant {
	t, _ := r.first(TableTenants, "id", id).(*restorev1.Tenant)
	return t
}

// Tenants returns every tenant ordered by id.
func (r *Reader) Tenants() []*restorev1.Tenant {
	var out []*restorev1.Tenant
	for _, o := range r.all(TableTenants, "id") {
		out = append(out, o.(*restorev1.Tenant))
	}
	return out
}

// Token returns a stored token or nil.
func (r *Reader) Token(id string) *raftv1.StoredToken {
	t, _ := r.first(TableTokens, "id", id).(*raftv1.StoredToken)
	return t
}

// Tokens returns every stored token ordered by id.
func (r *Reader) Tokens() []*raftv1.StoredToken {
	var out []*raftv1.StoredToken
	for _, o := range r.all(TableTokens, "id") {
		out = append(out, o.(*raftv1.StoredToken))
	}
	return out
}

// Restore returns a restore or nil.
func (r *Reader) Restore(id string) *restorev1.Restore {
	x, _ := r.first(TableRestores, "id", id).(*restorev1.Restore)
	return x
}

// Restores returns restores, newest first (ids are time-ordered). An empty
// tenant means every tenant.
func (r *Reader) Restores(tenant string) []*restorev1.Restore {
	var objs []any
	if tenant == "" {
		objs = r.all(TableRestores, "id")
	} else {
		objs = r.all(TableRestores, "tenant", tenant)
	}
	out := make([]*restorev1.Restore, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.Restore))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id > out[j].Id })
	return out
}

// PendingRestores returns the restores waiting for a host, oldest first.
func (r *Reader) PendingRestores() []*restorev1.Restore {
	var out []*restorev1.Restore
	for _, o := range r.all(TableRestores, indexPending, true) {
		out = append(out, o.(*restorev1.Restore))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// AssignedRestores returns the restores a host must act on: run them or
// tear them down (lifecycle.Desired), never its ended history.
func (r *Reader) AssignedRestores(hostID string) []*restorev1.Restore {
	return as[*restorev1.Restore](r.all(TableRestores, indexAssigned, hostID))
}

// RestoresOnHost returns the restores placed on a host.
func (r *Reader) RestoresOnHost(hostID string) []*restorev1.Restore {
	var out []*restorev1.Restore
	for _, o := range r.all(TableRestores, "host", hostID) {
		out = append(out, o.(*restorev1.Restore))
	}
	return out
}

// Host returns a host or nil.
func (r *Reader) Host(id string) *restorev1.Host {
	h, _ := r.first(TableHosts, "id", id).(*restorev1.Host)
	return h
}

// Hosts returns every host ordered by id.
func (r *Reader) Hosts() []*restorev1.Host {
	var out []*restorev1.Host
	for _, o := range r.all(TableHosts, "id") {
		out = append(out, o.(*restorev1.Host))
	}
	return out
}

// RecoveryPoint returns a recovery point or nil.
func (r *Reader) RecoveryPoint(id string) *restorev1.RecoveryPoint {
	p, _ := r.first(TableRecoveryPoints, "id", id).(*restorev1.RecoveryPoint)
	return p
}

// RecoveryPoints returns recovery points ordered by id. An empty tenant means
// every tenant.
func (r *Reader) RecoveryPoints(tenant string) []*restorev1.RecoveryPoint {
	var objs []any
	if tenant == "" {
		objs = r.all(TableRecoveryPoints, "id")
	} else {
		objs = r.all(TableRecoveryPoints, "tenant", tenant)
	}
	out := make([]*restorev1.RecoveryPoint, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.RecoveryPoint))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// Server returns a server or nil.
func (r *Reader) Server(id string) *restorev1.Server {
	s, _ := r.first(TableServers, "id", id).(*restorev1.Server)
	return s
}

// Servers returns every registered server ordered by id.
func (r *Reader) Servers() []*restorev1.Server {
	var out []*restorev1.Server
	for _, o := range r.all(TableServers, "id") {
		out = append(out, o.(*restorev1.Server))
	}
	return out
}

// IdempotencyKey returns the stored result of a create, or nil.
func (r *Reader) IdempotencyKey(kind, tenant, requestID string) *raftv1.IdempotencyKey {
	k, _ := r.first(TableIdempotency, "id", kind, tenant, requestID).(*raftv1.IdempotencyKey)
	return k
}

// IdempotencyKeys returns every idempotency key.
func (r *Reader) IdempotencyKeys() []*raftv1.IdempotencyKey {
	var out []*raftv1.IdempotencyKey
	for _, o := range r.all(TableIdempotency, "id") {
		out = append(out, o.(*raftv1.IdempotencyKey))
	}
	return out
}

// LabHost is the host x's lab runs on (another of its restores is placed
// there and has not ended), or "" when x is in no lab or the lab runs
// nowhere yet.
func (r *Reader) LabHost(x *restorev1.Restore) string {
	lab := lifecycle.Lab(x)
	if lab == "" {
		return ""
	}
	for _, o := range r.all(TableRestores, indexLab, lab) {
		if y := o.(*restorev1.Restore); y.Id != x.Id {
			return y.HostId
		}
	}
	return ""
}
