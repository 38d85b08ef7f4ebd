package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

// applyReportInventory replaces a host's inventory, registers the guests
// the hoster assigned in domains' XML (unless the domain has an owner),
// and verifies every guest of the host against the new inventory.
func applyReportInventory(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.ReportInventory
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	h := r.Host(cmd.HostId)
	if h == nil {
		return nil, notFound("host %q not found", cmd.HostId)
	}
	for _, d := range r.Inventory(cmd.HostId) {
		if err := txn.Delete(store.TableInventory, d); err != nil {
			return nil, err
		}
	}
	for _, d := range cmd.Domains {
		if d.Uuid == "" {
			return nil, malformed("domain uuid")
		}
		d.HostId = cmd.HostId
		if err := txn.Insert(store.TableInventory, d); err != nil {
			return nil, err
		}
	}
	for _, g := range cmd.Adopt {
		if g.Id == "" || r.Tenant(g.Tenant) == nil || r.Guest(g.Id) != nil || len(r.GuestsWithUUID(g.Uuid)) > 0 ||
			r.InventoryDomain(cmd.HostId, g.Uuid) == nil {
			continue // owned meanwhile, or its tenant is gone: the hoster's tag is ignored
		}
		g.HostId, g.Hypervisor, g.CreateTime = cmd.HostId, restorev1.Hypervisor_HYPERVISOR_KVM, ts(cmd.Time)
		if err := txn.Insert(store.TableGuests, g); err != nil {
			return nil, err
		}
	}
	for _, g := range ownership.Verify(cmd.HostId, r.GuestsOnHost(cmd.HostId), r.Inventory(cmd.HostId), r.GuestsWithUUID) {
		if err := txn.Insert(store.TableGuests, g); err != nil {
			return nil, err
		}
	}
	next := clone(h)
	next.InventoryTime = ts(cmd.Time)
	return nil, txn.Insert(store.TableHosts, next)
}
