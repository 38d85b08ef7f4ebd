package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

func applyRegisterHost(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RegisterHost
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	h := cmd.Host
	if h == nil {
		return nil, malformed("host")
	}
	h.State = restorev1.HostState_HOST_STATE_READY
	h.StateTime = ts(h.RegisterTime)
	if cur := store.ReaderFor(txn).Host(h.Id); cur != nil {
		h.Drained = cur.Drained // an operator's drain survives agent restarts
		h.Allocated = cur.Allocated
		h.RecoveryPoints = cur.RecoveryPoints
		if cur.State == h.State {
			h.StateTime = ts(cur.StateTime)
		}
	}
	return h, txn.Insert(store.TableHosts, h)
}

func applySetHostDrain(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.SetHostDrain
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Host(cmd.Id)
	if cur == nil {
		return nil, notFound("host %q not found", cmd.Id)
	}
	next := clone(cur)
	next.Drained = cmd.Drained
	return next, txn.Insert(store.TableHosts, next)
}

func applySetHostState(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.SetHostState
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	cur := r.Host(cmd.Id)
	if cur == nil {
		return nil, notFound("host %q not found", cmd.Id)
	}
	if cur.State == cmd.State {
		return cur, nil
	}
	next := clone(cur)
	next.State = cmd.State
	next.StateTime = ts(cmd.Time)
	// Restores moved below adjust the allocation on the stored host record.
	if err := txn.Insert(store.TableHosts, next); err != nil {
		return nil, err
	}
	if cmd.State != restorev1.HostState_HOST_STATE_DOWN {
		return next, nil
	}
	for _, x := range r.RestoresOnHost(cmd.Id) {
		t, ok := lifecycle.HostDown(x)
		if !ok {
			continue
		}
		y := clone(x)
		y.State = t.After()
		y.StateReason = "host " + cmd.Id + " went down (" + cmd.Reason + ")"
		if y.State == lifecycle.Pending {
			// A verification can run anywhere else: place it again.
			y.HostId = ""
			y.Boot = nil
			y.StateReason += "; waiting to be placed again"
		}
		if err := putRestore(txn, y, index, cmd.Time); err != nil {
			return nil, err
		}
	}
	return r.Host(cmd.Id), nil
}
