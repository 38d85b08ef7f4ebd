package lifecycle

import (
	"fmt"
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
)

// Misfit says why a host cannot take a restore now.
type Misfit uint8

// The misfits; Fits is none.
const (
	Fits Misfit = iota
	NotRegistered
	HostDownNow
	Drained
	NoRecoveryPoint
	TooSmall
	// BridgeNotOffered: a BRIDGED restore's bridge is not offered to its
	// tenant on the host.
	BridgeNotOffered
	// LabElsewhere: the restore's lab runs on another host.
	LabElsewhere
	// CannotRestore: the host's hypervisor lacks the capability the
	// restore needs (RestoreNeeds: restores, or exports for an EXPORT).
	CannotRestore
	// NoDiskRoom: the host's work dir has less room left than the
	// restore's overlay may grow to.
	NoDiskRoom
)

// Demand is the capacity a restore takes from its host: its VM's vCPUs
// and memory, and its overlay's growth limit.
func Demand(x *restorev1.Restore) *restorev1.Capacity {
	return &restorev1.Capacity{Vcpus: x.Vcpus, MemoryMib: x.MemoryMib, DiskMib: x.OverlayLimitMib}
}

// Free is what a host has left when allocated is given out already (its
// disk only means something when the host reports one).
func Free(h *restorev1.Host, allocated *restorev1.Capacity) *restorev1.Capacity {
	return &restorev1.Capacity{
		Vcpus:     h.GetCapacity().GetVcpus() - allocated.GetVcpus(),
		MemoryMib: h.GetCapacity().GetMemoryMib() - allocated.GetMemoryMib(),
		DiskMib:   h.GetCapacity().GetDiskMib() - allocated.GetDiskMib(),
	}
}

// Allocate adds (sign 1) or returns (sign -1) a restore's demand to an
// allocation, in place.
func Allocate(allocated *restorev1.Capacity, x *restorev1.Restore, sign int) {
	d := Demand(x)
	allocated.Vcpus += int32(sign) * d.Vcpus
	allocated.MemoryMib += int64(sign) * d.MemoryMib
	allocated.DiskMib += int64(sign) * d.DiskMib
}

// Fit says whether host h (nil when not registered), with allocated given
// out already, can take restore x of recovery point rp now: READY, not
// drained, holding rp, offering its bridge to its tenant (BRIDGED), the
// host its lab runs on (labHost, "" when the lab runs nowhere yet), with
// the vCPUs and memory free. The scheduler and the FSM both ask it, so a
// placement decided before raft is checked again against the replicated
// state by the same rule.
func Fit(h *restorev1.Host, allocated *restorev1.Capacity, rp *restorev1.RecoveryPoint, x *restorev1.Restore, labHost string) Misfit {
	switch {
	case h == nil:
		return NotRegistered
	case h.State != restorev1.HostState_HOST_STATE_READY:
		return HostDownNow
	case h.Drained:
		return Drained
	case !hypervisor.OfHost(h).Has(RestoreNeeds(x.GetMode())):
		return CannotRestore
	case rp == nil || !slices.Contains(rp.HostIds, h.Id):
		return NoRecoveryPoint
	case x.GetNetwork().GetKind() == restorev1.NetworkKind_NETWORK_KIND_BRIDGED && !BridgeOffered(h, x.Network.Bridge, x.Tenant):
		return BridgeNotOffered
	case labHost != "" && labHost != h.Id:
		return LabElsewhere
	}
	free, need := Free(h, allocated), Demand(x)
	switch {
	case free.Vcpus < need.Vcpus || free.MemoryMib < need.MemoryMib:
		return TooSmall
	case h.GetCapacity().GetDiskMib() > 0 && free.DiskMib < need.DiskMib:
		return NoDiskRoom
	}
	return Fits
}

// Describe says a misfit for a person, naming the host.
func (m Misfit) Describe(hostID string, h *restorev1.Host, allocated *restorev1.Capacity) string {
	switch m {
	case NotRegistered:
		return hostID + " (not registered)"
	case HostDownNow:
		return hostID + " (down)"
	case Drained:
		return hostID + " (drained)"
	case NoRecoveryPoint:
		return hostID + " (does not hold the recovery point)"
	case BridgeNotOffered:
		return hostID + " (does not offer the bridge to the tenant)"
	case LabElsewhere:
		return hostID + " (the lab runs on another host)"
	case CannotRestore:
		return hostID + " (its hypervisor lacks the restores, exports or images capability)"
	case TooSmall:
		free := Free(h, allocated)
		return fmt.Sprintf("%s has %d vCPUs and %d MiB free", hostID, free.Vcpus, free.MemoryMib)
	case NoDiskRoom:
		return fmt.Sprintf("%s has %d MiB left in its work dir for overlays", hostID, Free(h, allocated).DiskMib)
	}
	return hostID + " fits"
}
