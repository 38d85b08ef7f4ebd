package hyperv

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/restored/restored/internal/exportset"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/vhdx"
)

// served is a snapshot this run serves: its checkpoint and its exports
// (the VHDX files its disks are read from).
type served struct {
	vm, checkpoint string
	*exportset.Set
}

func checkpointName(id string) string { return "restored-" + id }

func (h *Host) socket(id string) string {
	return filepath.Join(h.cfg.WorkDir, "snapshots", "nbd", id+".sock")
}

// references is where the RCT ids of a guest's last completed backup are
// kept: Hyper-V keeps the reference point; the control plane its name.
func (h *Host) references(vmID string) string {
	return filepath.Join(h.cfg.WorkDir, "snapshots", "rct", strings.ToLower(vmID)+".json")
}

// reference is what a completed backup left for the next incremental.
type reference struct {
	// Checkpoint is the backup's checkpoint name (the control plane's
	// checkpoint id); RCTIDs each disk's RCT id, by disk name.
	Checkpoint string
	RCTIDs     map[string]string
}

// TakeSnapshot implements hypervisor.Snapshotter: a production checkpoint
// (application-consistent through the guest's integration services when
// asked, crash-consistent with Hyper-V's reason otherwise), the chain
// checked against the last backup's reference point, and the checkpoint's
// frozen VHDX files read by this agent (it runs on the host) and served as
// NBD.
func (h *Host) TakeSnapshot(ctx context.Context, spec hypervisor.SnapshotSpec) (*hypervisor.Snapshot, error) {
	vm, err := h.vm(ctx, spec.Guest, spec.GuestUUID)
	if err != nil {
		return nil, err
	}
	var cp checkpointInfo
	if err := call(ctx, h.r, "checkpoint", cmdCheckpoint, map[string]any{"VMId": vm.VMId, "Name": checkpointName(spec.ID), "Quiesce": spec.Quiesce}, &cp); err != nil {
		return nil, err
	}
	s := &served{vm: vm.VMId, checkpoint: cp.ID, Set: exportset.New(h.socket(spec.ID), h.log)}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
			_ = call(context.WithoutCancel(ctx), h.r, "remove-checkpoint", cmdRemoveCheckpoint, map[string]any{"ID": cp.ID}, nil)
		}
	}()
	if len(cp.Disks) == 0 {
		return nil, fmt.Errorf("guest %s has no virtual disks to back up", vm.Name)
	}
	out := &hypervisor.Snapshot{ID: spec.ID, Quiesced: cp.Consistent, Checkpoint: checkpointName(spec.ID)}
	if spec.Quiesce && !cp.Consistent {
		out.ConsistencyReason = "Hyper-V could not take a production checkpoint: " + cmp.Or(cp.Reason, "no reason given")
	}
	images := map[string]*vhdx.Image{}
	for _, d := range cp.Disks {
		name := diskName(d)
		im, f, err := openVHDX(d.Path)
		if err != nil {
			return nil, fmt.Errorf("disk %s (%s): %w", name, d.Path, err)
		}
		read := func(_ context.Context, p []byte, off int64) error { _, err := im.ReadAt(p, off); return err }
		sd, err := s.Add(name, d.Path, im.Size(), read, f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if im.Size() != d.Size {
			return nil, fmt.Errorf("disk %s: the file holds %d bytes, Hyper-V says %d", name, im.Size(), d.Size)
		}
		images[name] = im
		out.Disks = append(out.Disks, sd)
	}
	var extents map[string][]hypervisor.Extent
	out.Incremental, out.KindReason, extents = h.changes(ctx, vm, cp, spec, images)
	for name, e := range extents {
		s.SetExtents(name, e)
	}
	if out.Incremental {
		out.BaseCheckpoint = spec.Base.Checkpoint
	}
	if err := s.Serve(); err != nil {
		return nil, err
	}
	h.serving.Put(spec.ID, s)
	ok = true
	return out, nil
}

func openVHDX(path string) (*vhdx.Image, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil {
		var im *vhdx.Image
		if im, err = vhdx.Open(f, st.Size()); err == nil {
			return im, f, nil
		}
	}
	f.Close()
	return nil, nil, err
}

// changes decides FULL or INCREMENTAL and lists each disk's extents: the
// areas RCT reports changed since the last backup's reference point, or a
// FULL's allocated blocks.
func (h *Host) changes(ctx context.Context, vm vmInfo, cp checkpointInfo, spec hypervisor.SnapshotSpec, images map[string]*vhdx.Image) (bool, string, map[string][]hypervisor.Extent) {
	full := func(why string) (bool, string, map[string][]hypervisor.Extent) {
		out := map[string][]hypervisor.Extent{}
		for name, im := range images {
			for _, e := range im.Allocated() {
				out[name] = append(out[name], hypervisor.Extent{Offset: e.Offset, Length: e.Length})
			}
		}
		return false, why, out
	}
	if !spec.Incremental {
		return full("")
	}
	if spec.Base == nil || spec.Base.Checkpoint == "" {
		return full("no completed backup of this guest to build on: a full one is taken")
	}
	ref, err := h.loadReference(vm.VMId)
	switch {
	case err != nil:
		return full(fmt.Sprintf("no reference point of the last backup on this host (%v): a full one is taken", err))
	case ref.Checkpoint != spec.Base.Checkpoint:
		return full(fmt.Sprintf("the host's last reference point is of backup %s, not of %s: a full one is taken", ref.Checkpoint, spec.Base.Checkpoint))
	}
	out := map[string][]hypervisor.Extent{}
	for _, d := range cp.Disks {
		name := diskName(d)
		since := ref.RCTIDs[name]
		switch {
		case since == "":
			return full(fmt.Sprintf("disk %s has no RCT id from the last backup: a full one is taken", name))
		case spec.Base.Sizes[name] != 0 && spec.Base.Sizes[name] != d.Size:
			return full(fmt.Sprintf("disk %s was resized from %d to %d bytes since the last backup: a full one is taken", name, spec.Base.Sizes[name], d.Size))
		}
		ext, err := h.changedAreas(ctx, d, since, cp.ID)
		if err != nil {
			return full(fmt.Sprintf("Resilient Change Tracking does not answer for disk %s since the last backup (%v): a full one is taken", name, err))
		}
		out[name] = ext
	}
	return true, "", out
}

// changedAreas pages through GetVirtualDiskChanges until the disk is
// covered.
func (h *Host) changedAreas(ctx context.Context, d diskInfo, since, target string) ([]hypervisor.Extent, error) {
	const page = 64 << 30
	var out []hypervisor.Extent
	for off := int64(0); off < d.Size; {
		var c changesInfo
		if err := call(ctx, h.r, "changes", cmdChanges, map[string]any{"Path": d.Path, "Since": since, "Offset": off, "Length": min(page, d.Size-off), "Target": target}, &c); err != nil {
			return nil, err
		}
		if len(c.Offsets) != len(c.Lengths) || c.Processed <= 0 {
			return nil, fmt.Errorf("GetVirtualDiskChanges answered %d offsets, %d lengths, %d bytes processed", len(c.Offsets), len(c.Lengths), c.Processed)
		}
		for i := range c.Offsets {
			o, l := c.Offsets[i], c.Lengths[i]
			if o < off || l <= 0 || o+l > d.Size {
				return nil, fmt.Errorf("GetVirtualDiskChanges answered a change %d+%d outside %d+%d", o, l, off, d.Size-off)
			}
			if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == o {
				out[n-1].Length += l
				continue
			}
			out = append(out, hypervisor.Extent{Offset: o, Length: l})
		}
		off += c.Processed
	}
	return out, nil
}

func (h *Host) loadReference(vmID string) (reference, error) {
	var ref reference
	b, err := os.ReadFile(h.references(vmID))
	if err != nil {
		return ref, err
	}
	return ref, json.Unmarshal(b, &ref)
}

// ChangedExtents implements hypervisor.Snapshotter.
func (h *Host) ChangedExtents(_ context.Context, s *hypervisor.Snapshot, disk string, offset int64, limit int) (hypervisor.Extents, error) {
	return h.serving.Page(s.ID, disk, offset, limit)
}

// ReleaseSnapshot implements hypervisor.Snapshotter: after a completed
// backup the checkpoint becomes a reference point (its .avhdx merged, its
// RCT ids kept for the next incremental); otherwise it is removed.
func (h *Host) ReleaseSnapshot(ctx context.Context, spec hypervisor.ReleaseSpec) error {
	sv, served := h.serving.Take(spec.ID)
	id := ""
	if served {
		sv.Stop()
		id = sv.checkpoint
	} else {
		cps, err := h.checkpoints(ctx)
		if err != nil {
			return err
		}
		for _, c := range cps {
			if c.Name == checkpointName(spec.ID) {
				id = c.ID
			}
		}
	}
	if id == "" {
		return nil // nothing left
	}
	if !spec.Completed || !served {
		return call(ctx, h.r, "remove-checkpoint", cmdRemoveCheckpoint, map[string]any{"ID": id}, nil)
	}
	var ref referenceInfo
	if err := call(ctx, h.r, "reference", cmdReference, map[string]any{"ID": id}, &ref); err != nil {
		return err
	}
	names := sv.Names() // the checkpoint's order, which the reference point keeps
	if len(ref.RCTIDs) != len(names) {
		return fmt.Errorf("the reference point has %d RCT ids for %d disks", len(ref.RCTIDs), len(names))
	}
	saved := reference{Checkpoint: checkpointName(spec.ID), RCTIDs: map[string]string{}}
	for i, name := range names {
		saved.RCTIDs[name] = ref.RCTIDs[i]
	}
	b, _ := json.Marshal(saved)
	path := h.references(sv.vm)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// checkpoints lists the checkpoints named restored-*.
func (h *Host) checkpoints(ctx context.Context) ([]checkpointRef, error) {
	var raw json.RawMessage
	if err := call(ctx, h.r, "checkpoints", cmdCheckpoints, struct{}{}, &raw); err != nil {
		return nil, err
	}
	var out []checkpointRef
	if len(raw) == 0 {
		return out, nil
	}
	return out, unmarshalList(raw, &out)
}

// EndStale implements hypervisor.Snapshotter: the backup checkpoints no
// run serves are removed.
func (h *Host) EndStale(ctx context.Context) (int, error) {
	cps, err := h.checkpoints(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cps {
		id := strings.TrimPrefix(c.Name, "restored-")
		if h.serving.Serves(id) {
			continue
		}
		if err := call(ctx, h.r, "remove-checkpoint", cmdRemoveCheckpoint, map[string]any{"ID": c.ID}, nil); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
