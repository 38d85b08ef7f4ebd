package store

import (
	"sort"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Guest returns a protected guest or nil.
func (r *Reader) Guest(id string) *restorev1.Guest {
	g, _ := r.first(TableGuests, "id", id).(*restorev1.Guest)
	return g
}

// Guests returns guests ordered by id. An empty tenant means every tenant.
func (r *Reader) Guests(tenant string) []*restorev1.Guest {
	var objs []any
	if tenant == "" {
		objs = r.all(TableGuests, "id")
	} else {
		objs = r.all(TableGuests, "tenant", tenant)
	}
	out := make([]*restorev1.Guest, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.Guest))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// guestKey is what makes a guest the same guest: where it lives and its name.
func guestKey(g *restorev1.Guest) string {
	return g.Tenant + "|" + g.Hypervisor.String() + "|" + g.HostId + "|" + g.Vcenter + "|" + g.Name + "|" + g.Uuid + "|" + g.Moref
}

// SameGuest returns the registered guest that is g (same tenant, place and
// name), or nil.
func (r *Reader) SameGuest(g *restorev1.Guest) *restorev1.Guest {
	key := guestKey(g)
	for _, o := range r.Guests(g.Tenant) {
		if guestKey(o) == key {
			return o
		}
	}
	return nil
}
