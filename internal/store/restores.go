package store

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// Terminal reports whether a restore's state is final from the control
// plane's point of view.
func Terminal(s restorev1.RestoreState) bool {
	switch s {
	case restorev1.RestoreState_RESTORE_STATE_DESTROYED, restorev1.RestoreState_RESTORE_STATE_FAILED,
		restorev1.RestoreState_RESTORE_STATE_EXPIRED, restorev1.RestoreState_RESTORE_STATE_LOST:
		return true
	}
	return false
}

// Active reports whether a restore is (to be) running on its host.
func Active(s restorev1.RestoreState) bool {
	switch s {
	case restorev1.RestoreState_RESTORE_STATE_SCHEDULED, restorev1.RestoreState_RESTORE_STATE_PREPARING,
		restorev1.RestoreState_RESTORE_STATE_BOOTING, restorev1.RestoreState_RESTORE_STATE_RUNNING:
		return true
	}
	return false
}

// NeedsTeardown reports whether the host's agent still has to destroy the
// restore's VM and files.
func NeedsTeardown(r *restorev1.Restore) bool {
	if r.HostId == "" || r.DestroyTime != nil {
		return false
	}
	switch r.State {
	case restorev1.RestoreState_RESTORE_STATE_STOPPING, restorev1.RestoreState_RESTORE_STATE_EXPIRED,
		restorev1.RestoreState_RESTORE_STATE_LOST, restorev1.RestoreState_RESTORE_STATE_FAILED:
		return true
	}
	return false
}

// HoldsCapacity reports whether a restore takes capacity on its host:
// everything active or still to be torn down.
func HoldsCapacity(x *restorev1.Restore) bool {
	return x.HostId != "" && (Active(x.State) || NeedsTeardown(x))
}

// Allocated is the capacity restores hold on a host. The FSM keeps it on the
// host record as restores change.
func (r *Reader) Allocated(hostID string) *restorev1.Capacity {
	if h := r.Host(hostID); h != nil && h.Allocated != nil {
		return h.Allocated
	}
	return &restorev1.Capacity{}
}
