package store

import (
	"sort"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Inventory returns the domains a host reports, by UUID.
func (r *Reader) Inventory(hostID string) []*restorev1.HostDomain {
	out := as[*restorev1.HostDomain](r.all(TableInventory, indexHost, hostID))
	sort.Slice(out, func(i, j int) bool { return out[i].Uuid < out[j].Uuid })
	return out
}

// InventoryDomain returns the domain with uuid on host, or nil.
func (r *Reader) InventoryDomain(hostID, uuid string) *restorev1.HostDomain {
	d, _ := r.first(TableInventory, "id", hostID, uuid).(*restorev1.HostDomain)
	return d
}

// GuestsOnHost returns the guests registered on a host.
func (r *Reader) GuestsOnHost(hostID string) []*restorev1.Guest {
	out := as[*restorev1.Guest](r.all(TableGuests, indexHost, hostID))
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// GuestsWithUUID returns the guests registered for a domain UUID (one,
// unless registrations from before ownership was checked collide).
func (r *Reader) GuestsWithUUID(uuid string) []*restorev1.Guest {
	if uuid == "" {
		return nil
	}
	out := as[*restorev1.Guest](r.all(TableGuests, indexUUID, uuid))
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}
