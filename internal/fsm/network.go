package fsm

import (
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// applyLinkUpRestore clears a restore's link_down: its host brings the
// NIC's link up at its next reconcile.
func applyLinkUpRestore(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.LinkUpRestore
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Restore(cmd.Id)
	if cur == nil {
		return nil, notFound("restore %q not found", cmd.Id)
	}
	if !cur.GetNetwork().GetLinkDown() {
		return cur, nil // up already
	}
	if lifecycle.Terminal(cur.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s", cur.Id, cur.State)
	}
	next := clone(cur)
	next.Network.LinkDown = false // the reason stays: why it booted down
	return next, putRestore(txn, next, index, cmd.Time)
}
