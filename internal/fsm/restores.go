package fsm

import (
	"bytes"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
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
func putRestore(txn *store.Txn, r *restorev1.Restore, index uint64, now *timestamppb.Timestamp) error {
	r.Revision = index
	r.UpdateTime = ts(now)
	prev := store.ReaderFor(txn).Restore(r.Id)
	held := prev != nil && lifecycle.HoldsCapacity(prev)
	holds := lifecycle.HoldsCapacity(r)
	if held && holds && prev.HostId == r.HostId && proto.Equal(lifecycle.Demand(prev), lifecycle.Demand(r)) {
		return store.PutRestore(txn, r) // the host's allocation stays as it is
	}
	if held {
		if err := allocate(txn, prev, -1); err != nil {
			return err
		}
	}
	if holds {
		if err := allocate(txn, r, 1); err != nil {
			return err
		}
	}
	return store.PutRestore(txn, r)
}

// allocate adds (sign 1) or returns (sign -1) x's demand on its host.
func allocate(txn *store.Txn, x *restorev1.Restore, sign int) error {
	h := store.ReaderFor(txn).Host(x.HostId)
	if h == nil {
		return nil
	}
	next := clone(h)
	if next.Allocated == nil {
		next.Allocated = &restorev1.Capacity{}
	}
	lifecycle.Allocate(next.Allocated, x, sign)
	return txn.Insert(store.TableHosts, next)
}

// fits says whether x may be placed on host now, by the same rule as the
// scheduler's.
func fits(r *store.Reader, hostID string, x *restorev1.Restore) bool {
	return lifecycle.Fit(r.Host(hostID), r.Allocated(hostID), r.RecoveryPoint(x.RecoveryPointId), x, r.LabHost(x)) == lifecycle.Fits
}

func applyCreateRestore(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
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
	// The quota, again: two creates racing past the API's check meet here
	// one after the other.
	if t := r.Tenant(res.Tenant); t != nil {
		if err := lifecycle.QuotaAllowsRestore(res.Tenant, t.Quota, r.TenantUsage(res.Tenant), res); err != nil {
			return nil, err
		}
	}
	return createRestore(txn, r, &cmd, index)
}

// createRestore writes a checked new restore and its idempotency key: the
// leader may have chosen a host already; it is taken only if it still fits
// in the replicated state, else the restore is left to the scheduler.
func createRestore(txn *store.Txn, r *store.Reader, cmd *raftv1.CreateRestore, index uint64) (*restorev1.Restore, error) {
	res := cmd.Restore
	if res.HostId != "" {
		if fits(r, res.HostId, res) {
			res.State = lifecycle.Scheduled
			res.StateReason = "placed on host " + res.HostId
		} else {
			res.HostId = ""
			res.State = lifecycle.Pending
		}
	}
	if err := putRestore(txn, res, index, res.CreateTime); err != nil {
		return nil, err
	}
	key := &raftv1.IdempotencyKey{
		Kind: IdempotencyKindRestore, Tenant: res.Tenant, RequestId: res.RequestId,
		BodySha256: cmd.BodySha256, ObjectId: res.Id, CreateTime: ts(res.CreateTime),
	}
	return res, txn.Insert(store.TableIdempotency, key)
}

// ConflictError is the error for a request_id reused with another body.
func ConflictError(requestID, objectID string) error {
	return status.Errorf(codes.AlreadyExists,
		"request_id %q was already used for %s with a different body; use a new request_id for a new request",
		requestID, objectID)
}

func applyDeleteRestore(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.DeleteRestore
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Restore(cmd.Id)
	if cur == nil {
		return nil, notFound("restore %q not found", cmd.Id)
	}
	t, ok := lifecycle.Deletion(cur.State)
	if !ok {
		return cur, nil // stopping or ended already
	}
	next := clone(cur)
	next.State = t.After()
	if t.TornDown {
		next.StateReason = "deleted before it was placed on a host"
		next.DestroyTime = ts(cmd.Time)
	} else {
		next.StateReason = "deletion requested; waiting for host " + next.HostId + " to tear it down"
	}
	return next, putRestore(txn, next, index, cmd.Time)
}

func applyReportRestoreStatus(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
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
	t, ok := lifecycle.AgentReport(cur.State, rep.State)
	if !ok {
		return nil, ReportRefused(cur, rep.State)
	}
	if t.Keep && !t.TornDown && rep.Boot == nil && rep.Verification == nil {
		return cur, nil // progress that changes nothing now
	}
	if t.Keep && t.TornDown && cur.DestroyTime != nil && rep.Verification == nil {
		return cur, nil // its teardown was reported already
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
	if t.TornDown && next.DestroyTime == nil {
		// The agent has removed the VM and its files.
		next.DestroyTime = ts(cmd.Time)
		if t.Keep {
			// EXPIRED, LOST or FAILED stay as they are: they say why it ended.
			next.StateReason = fmt.Sprintf("%s; the VM was torn down", cur.StateReason)
		}
	}
	if !t.Keep {
		next.State = t.After()
		next.StateReason = rep.StateReason
		next.Progress = nil
		if next.State == lifecycle.Preparing || next.State == lifecycle.Promoting {
			next.Progress = clone(rep.Progress)
		}
		if next.State == lifecycle.Promoted && rep.Promotion != nil {
			p := clone(rep.Promotion)
			p.StoragePool = cur.GetPromotion().GetStoragePool()
			next.Promotion = p
		}
		if next.State == lifecycle.Running && rep.Export != nil {
			next.Export = clone(rep.Export)
		}
		if next.State == lifecycle.Running && rep.Image != nil {
			next.Image = clone(rep.Image)
		}
		if lifecycle.Terminal(next.State) {
			next.Export, next.Image = nil, nil // nothing serves them any more
		}
	}
	return next, putRestore(txn, next, index, cmd.Time)
}

// ReportRefused is the error for an agent's report the restore lifecycle
// does not allow now.
func ReportRefused(cur *restorev1.Restore, reported restorev1.RestoreState) error {
	if !lifecycle.AgentMayReport(reported) {
		return status.Errorf(codes.InvalidArgument, "an agent cannot report state %s", reported)
	}
	return status.Errorf(codes.FailedPrecondition, "restore %s is %s: its host may not report %s now", cur.Id, cur.State, reported)
}

func applyPlaceRestores(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.PlaceRestores
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, p := range cmd.Placements {
		cur := r.Restore(p.RestoreId)
		if cur == nil {
			continue
		}
		t, ok := lifecycle.Placement(cur.State)
		if !ok || !fits(r, p.HostId, cur) {
			continue // changed since the scheduler looked; the next pass decides again
		}
		next := clone(cur)
		next.State = t.After()
		next.HostId = p.HostId
		next.StateReason = "placed on host " + p.HostId
		if err := putRestore(txn, next, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	for _, p := range cmd.Pending {
		cur := r.Restore(p.RestoreId)
		if cur == nil || cur.StateReason == p.Reason {
			continue
		}
		if _, waits := lifecycle.Placement(cur.State); !waits {
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

func applyExpireRestores(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.ExpireRestores
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, id := range cmd.Ids {
		cur := r.Restore(id)
		if cur == nil {
			continue
		}
		t, ok := lifecycle.Expiry(cur.State)
		if !ok {
			continue
		}
		next := clone(cur)
		next.State = t.After()
		next.StateReason = fmt.Sprintf("lease of %ds ran out at %s", cur.TtlSeconds, cur.ExpireTime.AsTime().UTC().Format("2006-01-02T15:04:05Z"))
		if t.TornDown {
			next.DestroyTime = ts(cmd.Time)
		}
		if err := putRestore(txn, next, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
