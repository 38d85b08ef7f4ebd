package fsm

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// IdempotencyKindRestore scopes restore request ids.
const IdempotencyKindRestore = "restore"

// putRestore stores a new version of a restore and keeps its host's
// allocated capacity in step, so reads never have to add it up.
func putRestore(txn *memdb.Txn, r *restorev1.Restore, index uint64, now *timestamppb.Timestamp) error {
	r.Revision = index
	r.UpdateTime = ts(now)
	reader := store.ReaderFor(txn)
	if prev := reader.Restore(r.Id); prev != nil && store.HoldsCapacity(prev) {
		if err := allocate(txn, prev.HostId, -prev.Vcpus, -prev.MemoryMib); err != nil {
			return err
		}
	}
	if store.HoldsCapacity(r) {
		if err := allocate(txn, r.HostId, r.Vcpus, r.MemoryMib); err != nil {
			return err
		}
	}
	return txn.Insert(store.TableRestores, r)
}

func allocate(txn *memdb.Txn, hostID string, vcpus int32, memory int64) error {
	h := store.ReaderFor(txn).Host(hostID)
	if h == nil {
		return nil
	}
	next := clone(h)
	if next.Allocated == nil {
		next.Allocated = &restorev1.Capacity{}
	}
	next.Allocated.Vcpus += vcpus
	next.Allocated.MemoryMib += memory
	return txn.Insert(store.TableHosts, next)
}

func applyCreateRestore(txn *memdb.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.CreateRestore
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	res := cmd.Restore
	if res == nil {
		return nil, malformed("restore")
	}
	if k := r.IdempotencyKey(IdempotencyKindRestore, res.Tenant, res.RequestId); k != nil {
		if !bytes.Equal(k.BodySha256, cmd.BodySha256) {
			return nil, ConflictError(res.RequestId, k.ObjectId)
		}
		if prev := r.Restore(k.ObjectId); prev != nil {
			return prev, nil
		}
	}
	if r.Restore(res.Id) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "restore %q already exists", res.Id)
	}
	// The leader may have chosen a host already; take it only if it still
	// fits in the replicated state, else leave the restore to the scheduler.
	if res.HostId != "" {
		if r.Fits(res.HostId, res) {
			res.State = restorev1.RestoreState_RESTORE_STATE_SCHEDULED
			res.StateReason = "placed on host " + res.HostId
		} else {
			res.HostId = ""
			res.State = restorev1.RestoreState_RESTORE_STATE_PENDING
		}
	}
	if err := putRestore(txn, res, index, res.CreateTime); err != nil {
		return nil, err
	}
	key := &raftv1.IdempotencyKey{
		Kind: IdempotencyKindRestore, Tenant: res.Tenant, RequestId: res.RequestId,
		BodySha256: cmd.BodySha256, ObjectId: res.Id,
	}
	return res, txn.Insert(store.TableIdempotency, key)
}

// ConflictError is the error for a request_id reused with another body.
func ConflictError(requestID, objectID string) error {
	return status.Errorf(codes.AlreadyExists,
		"request_id %q was already used for %s with a different body; use a new request_id for a new request",
		requestID, objectID)
}

func applyDeleteRestore(txn *memdb.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.DeleteRestore
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Restore(cmd.Id)
	if cur == nil {
		return nil, notFound("restore %q not found", cmd.Id)
	}
	if store.Terminal(cur.State) || cur.State == restorev1.RestoreState_RESTORE_STATE_STOPPING {
		return cur, nil
	}
	next := clone(cur)
	if next.HostId == "" {
		next.State = restorev1.RestoreState_RESTORE_STATE_DESTROYED
		next.StateReason = "deleted before it was placed on a host"
		next.DestroyTime = ts(cmd.Time)
	} else {
		next.State = restorev1.RestoreState_RESTORE_STATE_STOPPING
		next.StateReason = "deletion requested; waiting for host " + next.HostId + " to tear it down"
	}
	return next, putRestore(txn, next, index, cmd.Time)
}

// agentMayReport lists the states an agent may report.
var agentMayReport = map[restorev1.RestoreState]bool{
	restorev1.RestoreState_RESTORE_STATE_PREPARING: true,
	restorev1.RestoreState_RESTORE_STATE_BOOTING:   true,
	restorev1.RestoreState_RESTORE_STATE_RUNNING:   true,
	restorev1.RestoreState_RESTORE_STATE_FAILED:    true,
	restorev1.RestoreState_RESTORE_STATE_DESTROYED: true,
}

func applyReportRestoreStatus(txn *memdb.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.ReportRestoreStatus
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	rep := cmd.Report
	if rep == nil {
		return nil, malformed("report")
	}
	cur := store.ReaderFor(txn).Restore(rep.RestoreId)
	if cur == nil {
		return nil, notFound("restore %q not found", rep.RestoreId)
	}
	if cur.HostId != rep.HostId {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is not assigned to host %s", rep.RestoreId, rep.HostId)
	}
	if !agentMayReport[rep.State] {
		return nil, status.Errorf(codes.InvalidArgument, "an agent cannot report state %s", rep.State)
	}
	next := clone(cur)
	if rep.Boot != nil {
		next.Boot = clone(rep.Boot)
	}
	if rep.Verification != nil {
		v, err := verificationOf(cur, rep.Verification)
		if err != nil {
			return nil, err
		}
		if err := txn.Insert(store.TableVerifications, v); err != nil {
			return nil, err
		}
		next.Verdict = v.Verdict
	}
	switch {
	case rep.State == restorev1.RestoreState_RESTORE_STATE_DESTROYED || rep.State == restorev1.RestoreState_RESTORE_STATE_FAILED:
		// The agent has removed the VM and its files.
		next.DestroyTime = ts(cmd.Time)
		if store.Terminal(cur.State) && rep.State == restorev1.RestoreState_RESTORE_STATE_DESTROYED {
			// EXPIRED, LOST or FAILED stay as they are: they say why it ended.
			next.StateReason = fmt.Sprintf("%s; the VM was torn down", cur.StateReason)
		} else {
			next.State = rep.State
			next.StateReason = rep.StateReason
		}
	case cur.State == restorev1.RestoreState_RESTORE_STATE_STOPPING || store.Terminal(cur.State):
		// Teardown was asked for: progress reports no longer change the state.
		if rep.Boot == nil {
			return cur, nil
		}
	default:
		next.State = rep.State
		next.StateReason = rep.StateReason
	}
	return next, putRestore(txn, next, index, cmd.Time)
}

func applyPlaceRestores(txn *memdb.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.PlaceRestores
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, p := range cmd.Placements {
		cur := r.Restore(p.RestoreId)
		if cur == nil || cur.State != restorev1.RestoreState_RESTORE_STATE_PENDING || r.Host(p.HostId) == nil {
			continue // changed since the scheduler looked; the next pass decides again
		}
		next := clone(cur)
		next.State = restorev1.RestoreState_RESTORE_STATE_SCHEDULED
		next.HostId = p.HostId
		next.StateReason = "placed on host " + p.HostId
		if err := putRestore(txn, next, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	for _, p := range cmd.Pending {
		cur := r.Restore(p.RestoreId)
		if cur == nil || cur.State != restorev1.RestoreState_RESTORE_STATE_PENDING || cur.StateReason == p.Reason {
			continue
		}
		next := clone(cur)
		next.StateReason = p.Reason
		if err := putRestore(txn, next, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func applyExpireRestores(txn *memdb.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.ExpireRestores
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, id := range cmd.Ids {
		cur := r.Restore(id)
		if cur == nil || store.Terminal(cur.State) {
			continue
		}
		next := clone(cur)
		next.State = restorev1.RestoreState_RESTORE_STATE_EXPIRED
		next.StateReason = fmt.Sprintf("lease of %ds ran out at %s", cur.TtlSeconds, cur.ExpireTime.AsTime().UTC().Format("2006-01-02T15:04:05Z"))
		if next.HostId == "" {
			next.DestroyTime = ts(cmd.Time)
		}
		if err := putRestore(txn, next, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
