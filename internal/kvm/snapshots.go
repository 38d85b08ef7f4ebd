package kvm

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/nbd"
)

func (h *Host) snapshotsDir() string { return filepath.Join(h.workDir, "snapshots") }

// exportSocket is where a snapshot's exports are served: a unix socket
// only this host reaches, in a directory only QEMU and root may enter (the
// agent's NBD gate serves it to backup jobs over TLS).
func (h *Host) exportSocket(id string) string {
	return filepath.Join(h.snapshotsDir(), "nbd", id+".sock")
}

// TakeSnapshot implements hypervisor.Snapshotter with a pull-mode backup
// and a new checkpoint (BeginBackup).
func (h *Host) TakeSnapshot(ctx context.Context, spec hypervisor.SnapshotSpec) (*hypervisor.Snapshot, error) {
	if err := QEMUDir(filepath.Dir(h.exportSocket(spec.ID))); err != nil {
		return nil, fmt.Errorf("the NBD socket directory: %w", err)
	}
	b, err := h.drv.BeginBackup(ctx, BackupSpec{
		Domain: spec.Guest, Owner: h.hostID, ID: spec.ID, Quiesce: spec.Quiesce, Incremental: spec.Incremental,
		Base: spec.Base, Socket: h.exportSocket(spec.ID), ScratchDir: h.snapshotsDir(),
	})
	if err != nil {
		return nil, err
	}
	out := &hypervisor.Snapshot{
		ID: spec.ID, Quiesced: b.Quiesced, ConsistencyReason: b.ConsistencyReason, Incremental: b.Incremental,
		KindReason: b.KindReason, Checkpoint: b.Checkpoint, BaseCheckpoint: b.BaseCheckpoint, Frozen: b.Frozen,
	}
	for _, d := range b.Disks {
		t := nbd.Target{Network: "unix", Address: b.Socket, Export: d.Export}
		out.Disks = append(out.Disks, hypervisor.SnapshotDisk{
			Name: d.Name, Source: d.Source, Size: d.Size, URI: t.String(), Export: d.Export, Bitmap: d.Bitmap,
		})
	}
	return out, nil
}

// ChangedExtents implements hypervisor.Snapshotter from the export's
// block status: the dirty bitmap of an incremental, base:allocation of a
// full.
func (h *Host) ChangedExtents(ctx context.Context, s *hypervisor.Snapshot, disk string, offset int64, limit int) (hypervisor.Extents, error) {
	var d *hypervisor.SnapshotDisk
	for i := range s.Disks {
		if s.Disks[i].Name == disk {
			d = &s.Disks[i]
		}
	}
	if d == nil {
		return hypervisor.Extents{}, fmt.Errorf("snapshot %s has no disk %q", s.ID, disk)
	}
	t, err := nbd.ParseURI(d.URI)
	if err != nil {
		return hypervisor.Extents{}, err
	}
	metaContext := nbd.BaseAllocation
	if d.Bitmap != "" {
		metaContext = d.Bitmap
	}
	c, err := nbd.Dial(ctx, t.Network, t.Address, nbd.Options{Export: t.Export, MetaContexts: []string{metaContext}})
	if err != nil {
		return hypervisor.Extents{}, err
	}
	defer c.Close()
	return extentsFrom(c, metaContext, offset, limit)
}

// extentsFrom lists up to limit extents to read from offset on: dirty ones
// for a dirty bitmap, allocated non-zero ones for base:allocation.
func extentsFrom(c *nbd.Conn, metaContext string, offset int64, limit int) (hypervisor.Extents, error) {
	out := hypervisor.Extents{DiskSize: c.Size(), Next: -1}
	const window = 1 << 30
	for off := offset; off < c.Size(); {
		ext, err := c.BlockStatus(metaContext, off, min(window, c.Size()-off))
		if err != nil {
			return hypervisor.Extents{}, err
		}
		for _, e := range ext {
			if wanted(metaContext, e.Flags) {
				if len(out.Extents) == limit {
					out.Next = e.Offset
					return out, nil
				}
				n := len(out.Extents)
				if n > 0 && out.Extents[n-1].Offset+out.Extents[n-1].Length == e.Offset {
					out.Extents[n-1].Length += e.Length
				} else {
					out.Extents = append(out.Extents, hypervisor.Extent{Offset: e.Offset, Length: e.Length})
				}
			}
			off = e.Offset + e.Length
		}
	}
	return out, nil
}

func wanted(metaContext string, flags uint32) bool {
	if metaContext == nbd.BaseAllocation {
		return flags&(nbd.StateHole|nbd.StateZero) == 0
	}
	return flags&nbd.StateDirty != 0
}

// ReleaseSnapshot implements hypervisor.Snapshotter: it ends the backup
// job and deletes the snapshot's checkpoint or, after a completed backup,
// every older one (the new one is the next incremental's base).
func (h *Host) ReleaseSnapshot(ctx context.Context, spec hypervisor.ReleaseSpec) error {
	if err := h.drv.EndBackup(ctx, h.hostID, spec.Guest); err != nil {
		return err
	}
	checkpoint := CheckpointName(spec.ID)
	if !spec.Completed {
		return h.drv.DeleteCheckpoint(ctx, spec.Guest, checkpoint)
	}
	cps, err := h.drv.Checkpoints(ctx, spec.Guest)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp != checkpoint {
			if err := h.drv.DeleteCheckpoint(ctx, spec.Guest, cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// EndStale implements hypervisor.Snapshotter: the backup jobs an earlier
// run of this host's agent served.
func (h *Host) EndStale(ctx context.Context) (int, error) {
	return h.drv.EndStaleBackups(ctx, h.hostID)
}
