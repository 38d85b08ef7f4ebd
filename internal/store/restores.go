package store

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// Allocated is the capacity restores hold on a host. The FSM keeps it on the
// host record as restores change (lifecycle.HoldsCapacity says which do).
func (r *Reader) Allocated(hostID string) *restorev1.Capacity {
	if h := r.Host(hostID); h != nil && h.Allocated != nil {
		return h.Allocated
	}
	return &restorev1.Capacity{}
}
