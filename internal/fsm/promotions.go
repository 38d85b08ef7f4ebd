package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

// applyPromoteRestore records a promotion asked for: a RUNNING VIRTUALIZE
// restore becomes PROMOTING with its storage pool; asking again for the
// same pool answers the restore as it is.
func applyPromoteRestore(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.PromoteRestore
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Restore(cmd.Id)
	if cur == nil {
		return nil, notFound("restore %q not found", cmd.Id)
	}
	if cur.State == lifecycle.Promoting && cur.GetPromotion().GetStoragePool() == cmd.StoragePool {
		return cur, nil
	}
	if err := lifecycle.PromotionRefused(cur); err != nil {
		return nil, err
	}
	t, _ := lifecycle.Promotion(cur.State)
	next := clone(cur)
	next.State = t.After()
	next.StateReason = "promotion asked for: waiting for host " + next.HostId + " to copy the disks to storage pool " + cmd.StoragePool
	next.Promotion = &restorev1.Promotion{StoragePool: cmd.StoragePool}
	return next, putRestore(txn, next, index, cmd.Time)
}

// applyCancelPromotion stops a promotion: the restore is RUNNING again
// and its host aborts the copy.
func applyCancelPromotion(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.CancelPromotion
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Restore(cmd.Id)
	if cur == nil {
		return nil, notFound("restore %q not found", cmd.Id)
	}
	if err := lifecycle.PromotionCancelRefused(cur); err != nil {
		return nil, err
	}
	t, _ := lifecycle.PromotionCancel(cur.State)
	next := clone(cur)
	next.State = t.After()
	next.StateReason = "promotion cancelled; runs from its overlay as before"
	next.Promotion = nil
	next.Progress = nil
	return next, putRestore(txn, next, index, cmd.Time)
}
