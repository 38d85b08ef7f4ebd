package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func applyRegisterGuest(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RegisterGuest
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	g := cmd.Guest
	if g == nil || g.Id == "" || g.Tenant == "" || g.Hypervisor == restorev1.Hypervisor_HYPERVISOR_UNSPECIFIED {
		return nil, malformed("guest")
	}
	r := store.ReaderFor(txn)
	if r.Tenant(g.Tenant) == nil {
		return nil, notFound("tenant %q not found", g.Tenant)
	}
	if ownership.FromInventory(g.Hypervisor) {
		d, err := ownership.Find(g.HostId, r.Inventory(g.HostId), ownership.Key{Name: g.Name, UUID: g.Uuid, Moref: g.Moref})
		if err != nil {
			return nil, err
		}
		if err := ownership.MayOwn(g.Tenant, d.Uuid, r.GuestsWithUUID(d.Uuid)); err != nil {
			return nil, err
		}
		g.Name, g.Uuid, g.Moref, g.State, g.StateReason = d.Name, d.Uuid, d.Moref, ownership.Verified, ""
	} else if o := r.SameGuest(g); o != nil {
		return nil, status.Errorf(codes.AlreadyExists, "this guest is registered already as %s", o.Id)
	}
	return g, txn.Insert(store.TableGuests, g)
}

func applyUnregisterGuest(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.UnregisterGuest
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	g := r.Guest(cmd.Id)
	if g == nil {
		return nil, notFound("guest %q not found", cmd.Id)
	}
	// Its host must be able to release an active snapshot, which needs the guest.
	if a := r.ActiveSnapshot(g.Id); a != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "guest %s has snapshot %s in state %s: release it (DELETE /v1/snapshots/%s) first", g.Id, a.Id, a.State, a.Id)
	}
	if err := txn.Delete(store.TableGuests, g); err != nil {
		return nil, err
	}
	// The guests left that named the same domain may be its owner now.
	for _, o := range r.GuestsWithUUID(g.Uuid) {
		for _, n := range ownership.Verify(o.HostId, r.GuestsOnHost(o.HostId), r.Inventory(o.HostId), r.GuestsWithUUID) {
			if err := txn.Insert(store.TableGuests, n); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}
