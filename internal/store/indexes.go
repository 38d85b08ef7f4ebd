package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Index names beyond "id" and the plain field indexes.
const (
	// indexExpiry: restores a lease can still end, by expire_time.
	indexExpiry = "expiry"
	// indexEnded: restores that ended and hold nothing on a host, by
	// update_time; snapshots released or failed, by release_time;
	// verifications by end_time; tokens that stopped working (revoked or
	// expired; never the bootstrap token) by TokenEnd.
	indexEnded = "ended"
	// indexLease: snapshots a lease can still release, by lease_expire_time.
	indexLease = "lease"
	// indexCreated: idempotency keys by create_time.
	indexCreated = "created"
	// indexPending: restores waiting for a host.
	indexPending = "pending"
	// indexPolicyRuns: VERIFY restores a policy started, by policy, asset
	// and id (time-ordered).
	indexPolicyRuns = "policy_runs"
	// indexActivePolicyRuns: those of them not ended, by host.
	indexActivePolicyRuns = "active_policy_runs"
	// indexAsset: recovery points by tenant and asset.
	indexAsset = "asset"
	// indexRecoveryPoint: restores and verifications by recovery point.
	indexRecoveryPoint = "recovery_point"
	// indexAssigned: restores their host must act on (run or tear down),
	// by host.
	indexAssigned = "assigned"
	// indexHolder: recovery points by the hosts that hold them.
	indexHolder = "holder"
	// indexHost: the host a guest or an inventoried domain is on.
	indexHost = "host"
	// indexUUID: a domain's UUID (guests, inventory).
	indexUUID = "uuid"
	// indexLab: the restores on their lab's host, by lab.
	indexLab = "lab"
)

// timeIndex indexes objects by a time at, leaving out those for which it
// says false; its keys sort by time.
type timeIndex struct {
	at func(obj any) (time.Time, bool)
}

func timeKey(t time.Time) []byte {
	var b [8]byte
	n := t.UnixNano()
	if t.Before(time.Unix(0, 0)) {
		n = 0
	}
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

func (ix timeIndex) FromObject(obj any) (bool, []byte, error) {
	t, ok := ix.at(obj)
	if !ok {
		return false, nil, nil
	}
	return true, timeKey(t), nil
}

func (ix timeIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("time index: want one argument")
	}
	t, ok := args[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("time index: argument must be a time.Time, not %T", args[0])
	}
	return timeKey(t), nil
}

func stamp(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// conditional indexes only the objects keep accepts, by field.
type conditional struct {
	keep  func(obj any) bool
	inner memdb.Indexer
}

func (c conditional) FromObject(obj any) (bool, []byte, error) {
	if !c.keep(obj) {
		return false, nil, nil
	}
	return c.inner.(memdb.SingleIndexer).FromObject(obj)
}

func (c conditional) FromArgs(args ...any) ([]byte, error) { return c.inner.FromArgs(args...) }

func restoreIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		idIndex(), fieldIndex("tenant", "Tenant"), fieldIndex("host", "HostId"),
		// Only the PENDING ones: the scheduler's work (a restore that
		// leaves PENDING leaves the index, and writes of the others skip it).
		{Name: indexPending, AllowMissing: true, Indexer: conditional{
			keep:  func(o any) bool { return o.(*restorev1.Restore).State == lifecycle.Pending },
			inner: &memdb.ConditionalIndex{Conditional: func(any) (bool, error) { return true, nil }},
		}},
		fieldIndex(indexRecoveryPoint, "RecoveryPointId"),
		// Restores that occupy their lab's host, by lab.
		{Name: indexLab, AllowMissing: true, Indexer: &nestedIDIndexer{id: func(o any) string {
			x := o.(*restorev1.Restore)
			if !lifecycle.InLab(x) {
				return ""
			}
			return lifecycle.Lab(x)
		}}},
		{Name: indexExpiry, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			x := o.(*restorev1.Restore)
			return stamp(x.ExpireTime), x.ExpireTime != nil && !lifecycle.Terminal(x.State)
		}}},
		{Name: indexEnded, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			x := o.(*restorev1.Restore)
			return stamp(x.UpdateTime), lifecycle.Terminal(x.State) && !lifecycle.NeedsTeardown(x)
		}}},
		{Name: indexPolicyRuns, AllowMissing: true, Indexer: conditional{
			keep: func(o any) bool { return o.(*restorev1.Restore).PolicyId != "" },
			inner: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "PolicyId"}, &memdb.StringFieldIndex{Field: "Asset"}, &memdb.StringFieldIndex{Field: "Id"},
			}},
		}},
		{Name: indexAssigned, AllowMissing: true, Indexer: conditional{
			keep:  func(o any) bool { _, ok := lifecycle.Desired(o.(*restorev1.Restore)); return ok },
			inner: &memdb.StringFieldIndex{Field: "HostId"},
		}},
		{Name: indexActivePolicyRuns, AllowMissing: true, Indexer: conditional{
			keep: func(o any) bool {
				x := o.(*restorev1.Restore)
				return x.PolicyId != "" && x.HostId != "" && !lifecycle.Terminal(x.State)
			},
			inner: &memdb.StringFieldIndex{Field: "HostId"},
		}},
	}
}

func snapshotIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		idIndex(), fieldIndex("tenant", "Tenant"), fieldIndex("host", "HostId"), fieldIndex("guest", "GuestId"),
		{Name: indexAssigned, AllowMissing: true, Indexer: conditional{
			keep:  func(o any) bool { return !lifecycle.SnapshotDone(o.(*restorev1.Snapshot)) },
			inner: &memdb.StringFieldIndex{Field: "HostId"},
		}},
		{Name: indexLease, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			s := o.(*restorev1.Snapshot)
			return stamp(s.LeaseExpireTime), s.LeaseExpireTime != nil && lifecycle.MayRelease(s)
		}}},
		{Name: indexEnded, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			s := o.(*restorev1.Snapshot)
			return stamp(s.ReleaseTime), lifecycle.SnapshotDone(s)
		}}},
	}
}

func verificationIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		idIndex(), fieldIndex("tenant", "Tenant"), fieldIndex(indexRecoveryPoint, "RecoveryPointId"),
		{Name: indexEnded, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			v := o.(*restorev1.Verification)
			return stamp(v.EndTime), v.EndTime != nil
		}}},
	}
}

func recoveryPointIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		idIndex(), fieldIndex("tenant", "Tenant"),
		{Name: indexHolder, AllowMissing: true, Indexer: &memdb.StringSliceFieldIndex{Field: "HostIds"}},
		{Name: indexAsset, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "Tenant"}, &memdb.StringFieldIndex{Field: "Asset"},
		}}},
	}
}

func tokenIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &tokenIDIndexer{}},
		{Name: indexEnded, AllowMissing: true, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			t := o.(*raftv1.StoredToken)
			end := TokenEnd(t)
			return end, !end.IsZero() && !t.Bootstrap
		}}},
	}
}

func idempotencyIndexes() []*memdb.IndexSchema {
	return []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "Kind"},
			&memdb.StringFieldIndex{Field: "Tenant"},
			&memdb.StringFieldIndex{Field: "RequestId"},
		}, AllowMissing: true}},
		// Keys written before they had a time sort first: they are pruned
		// at the first pass.
		{Name: indexCreated, Indexer: timeIndex{at: func(o any) (time.Time, bool) {
			return stamp(o.(*raftv1.IdempotencyKey).CreateTime), true
		}}},
	}
}
