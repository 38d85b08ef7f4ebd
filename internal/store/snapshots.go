package store

import (
	"sort"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
)

// Snapshot returns a snapshot or nil.
func (r *Reader) Snapshot(id string) *restorev1.Snapshot {
	s, _ := r.first(TableSnapshots, "id", id).(*restorev1.Snapshot)
	return s
}

// Snapshots returns snapshots newest first (ids are time-ordered UUIDv7).
// An empty tenant means every tenant.
func (r *Reader) Snapshots(tenant string) []*restorev1.Snapshot {
	if tenant == "" {
		return sortSnapshots(r.all(TableSnapshots, "id"))
	}
	return sortSnapshots(r.all(TableSnapshots, "tenant", tenant))
}

// SnapshotsOnHost returns a host's snapshots, newest first.
func (r *Reader) SnapshotsOnHost(hostID string) []*restorev1.Snapshot {
	return sortSnapshots(r.all(TableSnapshots, "host", hostID))
}

// AssignedSnapshots returns a host's snapshots not RELEASED or FAILED,
// newest first.
func (r *Reader) AssignedSnapshots(hostID string) []*restorev1.Snapshot {
	return sortSnapshots(r.all(TableSnapshots, indexAssigned, hostID))
}

// SnapshotsOfGuest returns a guest's snapshots, newest first.
func (r *Reader) SnapshotsOfGuest(guestID string) []*restorev1.Snapshot {
	return sortSnapshots(r.all(TableSnapshots, "guest", guestID))
}

// ActiveSnapshot returns the guest's snapshot that is not RELEASED or
// FAILED, or nil. A guest has at most one (libvirt runs one backup job per
// domain).
func (r *Reader) ActiveSnapshot(guestID string) *restorev1.Snapshot {
	for _, s := range r.SnapshotsOfGuest(guestID) {
		if !lifecycle.SnapshotDone(s) {
			return s
		}
	}
	return nil
}

func sortSnapshots(objs []any) []*restorev1.Snapshot {
	out := make([]*restorev1.Snapshot, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.Snapshot))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id > out[j].Id })
	return out
}
