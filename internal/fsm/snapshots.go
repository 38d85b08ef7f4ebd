package fsm

import (
	"bytes"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// IdempotencyKindSnapshot scopes snapshot request ids.
const IdempotencyKindSnapshot = "snapshot"

func applyCreateSnapshot(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.CreateSnapshot
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	s := cmd.Snapshot
	if s == nil || s.Id == "" || s.Tenant == "" || s.GuestId == "" {
		return nil, malformed("snapshot")
	}
	r := store.ReaderFor(txn)
	if s.RequestId != "" {
		if k := r.IdempotencyKey(IdempotencyKindSnapshot, s.Tenant, s.RequestId); k != nil {
			if !bytes.Equal(k.BodySha256, cmd.BodySha256) {
				return nil, ConflictError(s.RequestId, k.ObjectId)
			}
			if prev := r.Snapshot(k.ObjectId); prev != nil {
				return prev, nil
			}
		}
	}
	g := r.Guest(s.GuestId)
	if g == nil || g.Tenant != s.Tenant {
		return nil, notFound("guest %q not found", s.GuestId)
	}
	if err := ownership.Snapshottable(g); err != nil {
		return nil, err
	}
	if a := r.ActiveSnapshot(g.Id); a != nil {
		return nil, SnapshotInTheWay(g.Id, a)
	}
	if t := r.Tenant(s.Tenant); t != nil {
		if err := lifecycle.QuotaAllowsSnapshot(s.Tenant, t.Quota, r.TenantUsage(s.Tenant)); err != nil {
			return nil, err
		}
	}
	s.HostId = g.HostId
	s.State = restorev1.SnapshotState_SNAPSHOT_STATE_REQUESTED
	s.StateReason = "waiting for host " + g.HostId
	if err := txn.Insert(store.TableSnapshots, s); err != nil {
		return nil, err
	}
	if s.RequestId != "" {
		key := &raftv1.IdempotencyKey{Kind: IdempotencyKindSnapshot, Tenant: s.Tenant, RequestId: s.RequestId, BodySha256: cmd.BodySha256,
			ObjectId: s.Id, CreateTime: ts(s.CreateTime)}
		if err := txn.Insert(store.TableIdempotency, key); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SnapshotInTheWay refuses a new snapshot of a guest while its snapshot a
// is not RELEASED or FAILED (libvirt runs one backup job per domain).
func SnapshotInTheWay(guestID string, a *restorev1.Snapshot) error {
	if a.ReleaseRequested {
		return status.Errorf(codes.FailedPrecondition, "guest %s's snapshot %s is being released by its host; retry in a moment", guestID, a.Id)
	}
	return status.Errorf(codes.FailedPrecondition,
		"guest %s has snapshot %s in state %s: release it (DELETE /v1/snapshots/%s) or wait for its lease", guestID, a.Id, a.State, a.Id)
}

func applyReportSnapshotStatus(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.ReportSnapshotStatus
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	rep := cmd.Snapshot
	if rep == nil || !lifecycle.Snapshots.Reachable(rep.State, lifecycle.ByAgent) {
		return nil, malformed("snapshot report")
	}
	r := store.ReaderFor(txn)
	cur := r.Snapshot(rep.Id)
	if cur == nil || cur.HostId != cmd.HostId {
		return nil, notFound("snapshot %q not found on host %q", rep.Id, cmd.HostId)
	}
	t, ok := lifecycle.SnapshotReport(cur.State, rep.State)
	if !ok {
		return nil, malformed("snapshot report")
	}
	if t.Keep {
		return cur, nil // late, repeated, or after the end: changes nothing
	}
	next := clone(cur)
	next.State = t.After()
	if rep.StateReason != "" {
		next.StateReason = rep.StateReason
	}
	if rep.State == restorev1.SnapshotState_SNAPSHOT_STATE_READY {
		next.Consistency, next.ConsistencyReason = rep.Consistency, rep.ConsistencyReason
		next.Kind, next.KindReason = rep.Kind, rep.KindReason
		next.CheckpointId, next.BaseCheckpointId = rep.CheckpointId, rep.BaseCheckpointId
		next.Disks, next.FrozenMs, next.NbdCaCert = rep.Disks, rep.FrozenMs, rep.NbdCaCert
		next.ReadyTime = ts(cmd.Time)
	}
	if t.TornDown {
		next.ReleaseTime = ts(cmd.Time)
		next.ReleaseRequested = false
		if cur.State != restorev1.SnapshotState_SNAPSHOT_STATE_READY {
			next.BackupCompleted = false
		}
		if err := recordBase(txn, r, next); err != nil {
			return nil, err
		}
	}
	return next, txn.Insert(store.TableSnapshots, next)
}

// recordBase makes a completed backup's snapshot its guest's base for the
// next incremental.
func recordBase(txn *store.Txn, r *store.Reader, s *restorev1.Snapshot) error {
	if s.State != restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED || !s.BackupCompleted || s.CheckpointId == "" {
		return nil
	}
	g := r.Guest(s.GuestId)
	if g == nil {
		return nil
	}
	next := clone(g)
	next.BaseSnapshotId, next.BaseCheckpointId = s.Id, s.CheckpointId
	return txn.Insert(store.TableGuests, next)
}

func applyReleaseSnapshots(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.ReleaseSnapshots
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	var last *restorev1.Snapshot
	for _, id := range cmd.Ids {
		cur := r.Snapshot(id)
		if cur == nil {
			if len(cmd.Ids) == 1 {
				return nil, notFound("snapshot %q not found", id)
			}
			continue
		}
		last = cur
		if !lifecycle.MayRelease(cur) {
			continue
		}
		next := clone(cur)
		next.ReleaseRequested = true
		next.StateReason = cmd.Reason
		next.BackupCompleted = cmd.BackupCompleted && cur.State == restorev1.SnapshotState_SNAPSHOT_STATE_READY
		if err := txn.Insert(store.TableSnapshots, next); err != nil {
			return nil, err
		}
		last = next
	}
	return last, nil
}
