// Package ownership owns the rule of who owns a guest: a guest is a domain
// its host reports (the inventory its agent sends), known by its UUID (a
// renamed domain stays the same guest), and at most one guest of one tenant
// names a domain, cluster-wide. Restored's own restore domains are never in
// an inventory, so they can never be registered. The API asks it before it
// proposes a registration (a refusal writes no raft entry) and the FSM asks
// it again when it applies one or an inventory (so racing writes cannot
// break the rule). It must not read or write the store itself: its callers
// hand it what it decides on.
package ownership

import (
	"cmp"
	"fmt"
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	Verified   = restorev1.GuestState_GUEST_STATE_VERIFIED
	Unverified = restorev1.GuestState_GUEST_STATE_UNVERIFIED
	Conflict   = restorev1.GuestState_GUEST_STATE_CONFLICT
)

// FromInventory says whether a hypervisor's guests come from a host's
// inventory: every driver reports one (KVM: the libvirt domains; VMware:
// the cluster's VMs by instance UUID; Hyper-V: the host's VMs by VM id).
func FromInventory(h restorev1.Hypervisor) bool {
	switch h {
	case restorev1.Hypervisor_HYPERVISOR_KVM, restorev1.Hypervisor_HYPERVISOR_VMWARE, restorev1.Hypervisor_HYPERVISOR_HYPERV:
		return true
	}
	return false
}

// Key is how a registration names a domain: its UUID, its VMware moref,
// or its name (UUID first; a name or moref given with it must be its own).
type Key struct{ Name, UUID, Moref string }

func (k Key) String() string { return cmp.Or(k.UUID, k.Moref, k.Name) }

func (k Key) names(d *restorev1.HostDomain) bool {
	switch {
	case k.UUID != "":
		return d.Uuid == k.UUID
	case k.Moref != "":
		return d.Moref == k.Moref
	}
	return d.Name == k.Name
}

// Find is the domain of inventory a registration names.
func Find(hostID string, inventory []*restorev1.HostDomain, k Key) (*restorev1.HostDomain, error) {
	for _, d := range inventory {
		if !k.names(d) {
			continue
		}
		if k.Name != "" && d.Name != k.Name {
			return nil, status.Errorf(codes.FailedPrecondition, "host %s's domain %s is named %q, not %q", hostID, k, d.Name, k.Name)
		}
		if k.Moref != "" && d.Moref != k.Moref {
			return nil, status.Errorf(codes.FailedPrecondition, "host %s's domain %s is %s, not %s", hostID, k, cmp.Or(d.Moref, "no VMware VM"), k.Moref)
		}
		return d, nil
	}
	what := k.String()
	if len(inventory) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "host %s has reported no domains (is its agent running and up to date?): cannot register %q", hostID, what)
	}
	return nil, status.Errorf(codes.FailedPrecondition, "host %s reports no domain %q (Restored's own restore domains are never guests): see restorectl host domains %s", hostID, what, hostID)
}

// MayOwn checks that tenant may own the domain with uuid, given the guests
// that name it already.
func MayOwn(tenant, uuid string, owners []*restorev1.Guest) error {
	for _, g := range owners {
		if g.Tenant == tenant {
			return status.Errorf(codes.AlreadyExists, "domain %s is registered already as guest %s", uuid, g.Id)
		}
	}
	if len(owners) > 0 {
		return status.Errorf(codes.FailedPrecondition, "domain %s is another tenant's guest: a domain belongs to one tenant (unregister that guest first)", uuid)
	}
	return nil
}

// Verify is the state of each guest of a host against its inventory:
// VERIFIED when the host reports its domain (by UUID; a guest registered
// by name before ownership was checked gets the domain's UUID) and no other
// guest names that domain, UNVERIFIED when the host does not report it,
// CONFLICT when several guests name it. others gives the guests elsewhere
// that name a UUID. It returns the guests that changed, as new messages.
func Verify(hostID string, guests []*restorev1.Guest, inventory []*restorev1.HostDomain, others func(uuid string) []*restorev1.Guest) []*restorev1.Guest {
	byUUID := map[string]*restorev1.HostDomain{}
	byName := map[string]*restorev1.HostDomain{}
	for _, d := range inventory {
		byUUID[d.Uuid], byName[d.Name] = d, d
	}
	next := make([]*restorev1.Guest, 0, len(guests))
	claims := map[string][]string{} // uuid → guest ids
	for _, g := range guests {
		n := proto.Clone(g).(*restorev1.Guest)
		d := byUUID[n.Uuid]
		if n.Uuid == "" {
			d = byName[n.Name]
		}
		switch {
		case !FromInventory(n.Hypervisor):
		case d == nil:
			n.State = Unverified
			n.StateReason = fmt.Sprintf("host %s does not report this domain (removed, or not reported yet): no snapshot until it does", hostID)
		default:
			n.Uuid, n.Name = d.Uuid, d.Name
			claims[n.Uuid] = append(claims[n.Uuid], n.Id)
			n.State, n.StateReason = Verified, ""
		}
		next = append(next, n)
	}
	for _, n := range next {
		if n.State != Verified {
			continue
		}
		ids := slices.Clone(claims[n.Uuid])
		for _, o := range others(n.Uuid) {
			if o.HostId != hostID && !slices.Contains(ids, o.Id) {
				ids = append(ids, o.Id)
			}
		}
		if len(ids) > 1 {
			slices.Sort(ids)
			n.State = Conflict
			n.StateReason = fmt.Sprintf("guests %v name the same domain %s: an operator must unregister all but its owner's", ids, n.Uuid)
		}
	}
	var changed []*restorev1.Guest
	for i, n := range next {
		if !proto.Equal(n, guests[i]) {
			changed = append(changed, n)
		}
	}
	return changed
}

// Snapshottable refuses a snapshot of a guest that is not VERIFIED.
func Snapshottable(g *restorev1.Guest) error {
	if g.State == Verified || !FromInventory(g.Hypervisor) {
		return nil
	}
	return status.Errorf(codes.FailedPrecondition, "guest %s is %s: %s", g.Id, g.State, g.StateReason)
}

// IdentityConflict says why a bridged restore of asset would meet its
// production machine ("" when it would not): the tenant has a guest of
// that name, or a host reports a domain of that name. A restore of a
// production server on the production network would answer with the
// server's own identity (MAC in its configuration, IP, hostname).
func IdentityConflict(asset string, tenantGuests []*restorev1.Guest, domains []*restorev1.HostDomain) string {
	for _, g := range tenantGuests {
		if g.Name == asset {
			return fmt.Sprintf("asset %s is a production machine the tenant protects (guest %s)", asset, g.Id)
		}
	}
	for _, d := range domains {
		if d.Name == asset {
			return fmt.Sprintf("asset %s runs as a domain on host %s", asset, d.HostId)
		}
	}
	return ""
}
