package vmware

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/restored/restored/internal/exportset"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/revert"
)

// served is a snapshot this run serves: its vSphere snapshot and its
// exports.
type served struct {
	vm, snapshot string
	*exportset.Set
}

// snapshotName is the vSphere snapshot of a Restored snapshot id.
func snapshotName(id string) string { return "restored-" + id }

// description marks the vSphere snapshots of this Restored host.
func (h *Host) description() string { return "Restored backup snapshot of host " + h.cfg.HostID }

func (h *Host) socket(id string) string {
	return filepath.Join(h.cfg.WorkDir, "snapshots", "nbd", id+".sock")
}

// TakeSnapshot implements hypervisor.Snapshotter: change tracking on (and
// said so when it was off), a vSphere snapshot (quiesced through VMware
// Tools when asked, crash-consistent with vSphere's reason when that
// fails), the chain check of an incremental against vSphere's change ids,
// and the snapshot's base disks served as NBD, read from the datastore.
func (h *Host) TakeSnapshot(ctx context.Context, spec hypervisor.SnapshotSpec) (*hypervisor.Snapshot, error) {
	vm, err := h.vm(ctx, spec.Guest, spec.GuestUUID)
	if err != nil {
		return nil, err
	}
	moref := vm.Self.Value
	// What an interrupted attempt left.
	if _, err := h.removeNamed(ctx, moref, snapshotName(spec.ID)); err != nil {
		return nil, err
	}
	turnedOn, err := h.d.EnableChangeTracking(ctx, moref)
	if err != nil {
		return nil, err
	}
	if turnedOn {
		h.log.Info("change tracking was off: turned on", "vm", moref, "guest", vm.Name)
	}
	rv := revert.New()
	defer rv.Fail()
	snap, err := h.d.CreateSnapshot(ctx, moref, snapshotName(spec.ID), h.description(), spec.Quiesce)
	if err != nil {
		return nil, err
	}
	rv.Add(func() {
		if err := h.d.RemoveSnapshot(context.WithoutCancel(ctx), moref, snap.Moref); err != nil {
			h.log.Warn("removing the snapshot of a failed attempt", "vm", moref, "snapshot", snap.Moref, "err", err)
		}
	})
	if len(snap.Disks) == 0 {
		return nil, fmt.Errorf("guest %s has no virtual disks to back up", vm.Name)
	}
	incremental, reason, extents := h.changes(ctx, moref, snap, spec, turnedOn)
	s := &served{vm: moref, snapshot: snap.Moref, Set: exportset.New(h.socket(spec.ID), h.log)}
	out := &hypervisor.Snapshot{ID: spec.ID, Quiesced: snap.Quiesced, ConsistencyReason: snap.QuiesceReason,
		Incremental: incremental, KindReason: reason, Checkpoint: snapshotName(spec.ID)}
	if incremental {
		out.BaseCheckpoint = spec.Base.Checkpoint
	}
	for _, disk := range snap.Disks {
		f, err := h.d.OpenDisk(ctx, h.dcPath, disk)
		if err != nil {
			return nil, err
		}
		d, err := s.Add(disk.Name, disk.File, disk.Capacity, f.ReadAt, nil)
		if err != nil {
			return nil, err
		}
		d.ChangeID = disk.ChangeID
		s.SetExtents(disk.Name, extents[disk.Name])
		out.Disks = append(out.Disks, d)
	}
	if err := s.Serve(); err != nil {
		return nil, err
	}
	h.serving.Put(spec.ID, s)
	rv.Success()
	return out, nil
}

// changeIDEpoch is the part of a change id that changes when change
// tracking is reset: "52 de … 65 63/12" → "52 de … 65 63".
func changeIDEpoch(id string) string {
	epoch, _, _ := strings.Cut(id, "/")
	return epoch
}

// changes decides FULL or INCREMENTAL and lists each disk's extents to
// read: the areas changed since the base's change ids, or (a FULL) the
// allocated areas, or the whole disk when vSphere lists none.
func (h *Host) changes(ctx context.Context, moref string, snap *Snapshot, spec hypervisor.SnapshotSpec, turnedOn bool) (bool, string, map[string][]hypervisor.Extent) {
	full := func(why string) (bool, string, map[string][]hypervisor.Extent) {
		out := map[string][]hypervisor.Extent{}
		for _, d := range snap.Disks {
			areas, err := h.d.ChangedAreas(ctx, moref, snap.Moref, d, "*")
			if err != nil {
				h.log.Info("vSphere listed no allocated areas: the whole disk is read", "vm", moref, "disk", d.Name, "err", err)
				out[d.Name] = []hypervisor.Extent{{Offset: 0, Length: d.Capacity}}
				continue
			}
			out[d.Name] = toExtents(areas)
		}
		return false, why, out
	}
	if !spec.Incremental {
		return full("")
	}
	b := spec.Base
	switch {
	case b == nil || b.Checkpoint == "":
		return full("no completed backup of this guest to build on: a full one is taken")
	case turnedOn:
		return full("change tracking was off on the VM; Restored turned it on, so changes count from this snapshot: a full one is taken")
	}
	out := map[string][]hypervisor.Extent{}
	for _, d := range snap.Disks {
		since, ok := b.ChangeIDs[d.Name]
		switch {
		case !ok || since == "":
			return full(fmt.Sprintf("disk %s has no change id from the last backup: a full one is taken", d.Name))
		case b.Sources[d.Name] != d.File:
			return full(fmt.Sprintf("disk %s is now %s, at the last backup it was %s: a full one is taken", d.Name, d.File, b.Sources[d.Name]))
		case b.Sizes[d.Name] != d.Capacity:
			return full(fmt.Sprintf("disk %s was resized from %d to %d bytes since the last backup: a full one is taken", d.Name, b.Sizes[d.Name], d.Capacity))
		case d.ChangeID == "":
			return full(fmt.Sprintf("vSphere reports no change id for disk %s (is change tracking on?): a full one is taken", d.Name))
		case changeIDEpoch(d.ChangeID) != changeIDEpoch(since):
			return full(fmt.Sprintf("change tracking of disk %s was reset since the last backup (its change id is %q, the last backup's %q): a full one is taken", d.Name, d.ChangeID, since))
		}
		areas, err := h.d.ChangedAreas(ctx, moref, snap.Moref, d, since)
		if err != nil {
			return full(fmt.Sprintf("vSphere does not accept the last backup's change id of disk %s (%v): a full one is taken", d.Name, err))
		}
		out[d.Name] = toExtents(areas)
	}
	for name := range b.ChangeIDs {
		if _, ok := out[name]; !ok {
			h.log.Info("a disk of the last backup is gone", "vm", moref, "disk", name)
		}
	}
	return true, "", out
}

func toExtents(areas []Extent) []hypervisor.Extent {
	out := make([]hypervisor.Extent, 0, len(areas))
	for _, a := range areas {
		n := len(out)
		if n > 0 && out[n-1].Offset+out[n-1].Length == a.Offset {
			out[n-1].Length += a.Length
			continue
		}
		out = append(out, hypervisor.Extent{Offset: a.Offset, Length: a.Length})
	}
	return out
}

// ChangedExtents implements hypervisor.Snapshotter from the extents the
// snapshot listed when it was taken.
func (h *Host) ChangedExtents(_ context.Context, s *hypervisor.Snapshot, disk string, offset int64, limit int) (hypervisor.Extents, error) {
	return h.serving.Page(s.ID, disk, offset, limit)
}

// ReleaseSnapshot implements hypervisor.Snapshotter: it stops serving and
// removes the vSphere snapshot (its disks are consolidated into the VM's).
// The change ids stay vSphere's: the next incremental asks what changed
// since the one this snapshot recorded.
func (h *Host) ReleaseSnapshot(ctx context.Context, spec hypervisor.ReleaseSpec) error {
	if sv, ok := h.serving.Take(spec.ID); ok {
		sv.Stop()
	}
	vm, err := h.vm(ctx, spec.Guest, spec.GuestUUID)
	if errors.Is(err, ErrNotFound) {
		h.log.Info("the guest's VM is gone: no snapshot to remove", "guest", spec.Guest, "snapshot", spec.ID)
		return nil
	}
	if err != nil {
		return err
	}
	_, err = h.removeNamed(ctx, vm.Self.Value, snapshotName(spec.ID))
	return err
}

// removeNamed removes the VM's snapshots of that name that this host took.
func (h *Host) removeNamed(ctx context.Context, moref, name string) (int, error) {
	list, err := h.d.Snapshots(ctx, moref)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list {
		if s.Name != name || s.Description != h.description() {
			continue
		}
		if err := h.d.RemoveSnapshot(ctx, moref, s.Moref); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// EndStale implements hypervisor.Snapshotter: the vSphere snapshots this
// host took that no run serves any more.
func (h *Host) EndStale(ctx context.Context) (int, error) {
	vms, err := h.vms(ctx)
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, vm := range vms {
		list, err := h.d.Snapshots(ctx, vm.Self.Value)
		if err != nil {
			return ended, err
		}
		for _, s := range list {
			id, ours := strings.CutPrefix(s.Name, "restored-")
			if !ours || h.serving.Serves(id) || s.Description != h.description() {
				continue
			}
			if err := h.d.RemoveSnapshot(ctx, vm.Self.Value, s.Moref); err != nil {
				return ended, err
			}
			ended++
		}
	}
	return ended, nil
}
