package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// notAfter says whether t is set and at or before the cutoff.
func notAfter(t, cutoff *timestamppb.Timestamp) bool {
	return t != nil && cutoff != nil && !t.AsTime().After(cutoff.AsTime())
}

// applyPrune removes what the leader found ended and past its retention,
// checking each again: what changed since (or is still needed) stays.
func applyPrune(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.Prune
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, id := range cmd.RestoreIds {
		x := r.Restore(id)
		if x == nil || !lifecycle.Terminal(x.State) || lifecycle.NeedsTeardown(x) || !notAfter(x.UpdateTime, cmd.RestoresBefore) {
			continue
		}
		// Its verification (same id) stays: the history and the trend
		// outlive the restores.
		if err := store.DeleteRestore(txn, x); err != nil {
			return nil, err
		}
	}
	for _, id := range cmd.SnapshotIds {
		s := r.Snapshot(id)
		if s == nil || !lifecycle.SnapshotDone(s) || !notAfter(s.ReleaseTime, cmd.SnapshotsBefore) {
			continue
		}
		if g := r.Guest(s.GuestId); g != nil && g.BaseSnapshotId == s.Id {
			continue // the next incremental starts from it
		}
		if err := txn.Delete(store.TableSnapshots, s); err != nil {
			return nil, err
		}
	}
	for _, k := range cmd.IdempotencyKeys {
		cur := r.IdempotencyKey(k.Kind, k.Tenant, k.RequestId)
		if cur == nil || cmd.KeysBefore == nil || (cur.CreateTime != nil && cur.CreateTime.AsTime().After(cmd.KeysBefore.AsTime())) {
			continue
		}
		if err := txn.Delete(store.TableIdempotency, cur); err != nil {
			return nil, err
		}
	}
	for _, id := range cmd.TokenIds {
		t := r.Token(id)
		end := store.TokenEnd(t)
		if t == nil || t.Bootstrap || end.IsZero() || !notAfter(timestamppb.New(end), cmd.TokensBefore) {
			continue
		}
		if err := txn.Delete(store.TableTokens, t); err != nil {
			return nil, err
		}
	}
	for _, id := range cmd.AuditIds {
		ev, _ := txn.First(store.TableAudit, "id", id)
		if ev == nil || !notAfter(ev.(*restorev1.AuditEvent).Time, cmd.AuditBefore) {
			continue
		}
		if err := txn.Delete(store.TableAudit, ev); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
