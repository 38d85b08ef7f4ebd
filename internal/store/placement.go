package store

import (
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Fits reports whether a host can take restore x now: it is READY, not
// drained, holds x's recovery point and has the vCPUs and memory free. The
// FSM uses it to accept a placement decided before raft.Apply, so the answer
// depends only on the replicated state.
func (r *Reader) Fits(hostID string, x *restorev1.Restore) bool {
	h := r.Host(hostID)
	if h == nil || h.State != restorev1.HostState_HOST_STATE_READY || h.Drained {
		return false
	}
	rp := r.RecoveryPoint(x.RecoveryPointId)
	if rp == nil || !slices.Contains(rp.HostIds, hostID) {
		return false
	}
	a := r.Allocated(hostID)
	return h.GetCapacity().GetVcpus()-a.Vcpus >= x.Vcpus && h.GetCapacity().GetMemoryMib()-a.MemoryMib >= x.MemoryMib
}
