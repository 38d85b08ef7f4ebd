package agent

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/version"
)

// exportAddress is where QEMU's NBD servers listen: loopback only, for the
// backup jobs running on this host.
const exportAddress = "127.0.0.1"

func (a *Agent) snapshotsDir() string { return filepath.Join(a.cfg.WorkDir, "snapshots") }

// reconcileSnapshots acts on the host's snapshot assignments: takes the
// REQUESTED ones, releases the ones asked for, and fails the ones a previous
// run of the agent took (their exports ended when it stopped).
func (a *Agent) reconcileSnapshots(ctx context.Context, ss []*restorev1.SnapshotAssignment) {
	for _, as := range ss {
		s := as.Snapshot
		if !restoreIDPattern.MatchString(s.Id) || as.Guest == nil {
			a.log.Error("snapshot assignment refused", "snapshot", s.Id)
			continue
		}
		a.mu.Lock()
		_, serving := a.snaps[s.Id]
		taken := a.snapsTaken[s.Id]
		a.mu.Unlock()
		key := "snapshot:" + s.Id
		switch {
		case as.Release:
			if _, ok := a.claim(ctx, key); ok {
				go func() {
					defer a.release(key)
					a.releaseSnapshot(ctx, as)
				}()
			}
		case serving || taken:
			// Ours and in hand (or being taken).
		case s.State == restorev1.SnapshotState_SNAPSHOT_STATE_REQUESTED:
			if sctx, ok := a.claim(ctx, key); ok {
				a.mu.Lock()
				a.snapsTaken[s.Id] = true
				a.mu.Unlock()
				go func() {
					defer a.release(key)
					a.takeSnapshot(sctx, as)
				}()
			}
		default: // PREPARING or READY, but not ours: a previous run took it.
			if _, ok := a.claim(ctx, key); ok {
				go func() {
					defer a.release(key)
					a.loseSnapshot(ctx, as)
				}()
			}
		}
	}
}

// guestDomain is how libvirt knows the guest: its name, else its UUID.
func guestDomain(g *restorev1.Guest) string { return cmp.Or(g.Name, g.Uuid) }

func (a *Agent) takeSnapshot(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	a.reportSnapshot(ctx, &restorev1.Snapshot{Id: s.Id, State: restorev1.SnapshotState_SNAPSHOT_STATE_PREPARING, StateReason: "checking the chain and starting the export"})
	spec := kvm.BackupSpec{
		Domain: guestDomain(as.Guest), Owner: a.cfg.HostID, ID: s.Id, Quiesce: s.Quiesce, Incremental: s.Incremental,
		Address: exportAddress, ScratchDir: a.snapshotsDir(),
	}
	if b := as.Base; b != nil && b.CheckpointId != "" {
		spec.Base = &kvm.BackupBase{Checkpoint: b.CheckpointId, Sources: map[string]string{}}
		for _, d := range b.Disks {
			spec.Base.Sources[d.Name] = d.Source
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	b, err := a.drv.BeginBackup(bctx, spec)
	cancel()
	if err != nil {
		a.log.Error("snapshot failed", "snapshot", s.Id, "guest", spec.Domain, "err", err)
		a.reportSnapshot(ctx, &restorev1.Snapshot{Id: s.Id, State: restorev1.SnapshotState_SNAPSHOT_STATE_FAILED, StateReason: clampReason(err.Error())})
		return
	}
	a.mu.Lock()
	a.snaps[s.Id] = b
	a.mu.Unlock()
	a.log.Info("snapshot ready", "snapshot", s.Id, "guest", spec.Domain, "incremental", b.Incremental, "quiesced", b.Quiesced, "frozen", b.Frozen, "port", b.Port)
	a.reportSnapshot(ctx, readySnapshot(s.Id, b))
}

// readySnapshot is the READY report: what was obtained and where to read it.
func readySnapshot(id string, b *kvm.Backup) *restorev1.Snapshot {
	out := &restorev1.Snapshot{
		Id: id, State: restorev1.SnapshotState_SNAPSHOT_STATE_READY, StateReason: "the exports are readable",
		Consistency: restorev1.Consistency_CONSISTENCY_CRASH_CONSISTENT, ConsistencyReason: b.ConsistencyReason,
		Kind: restorev1.SnapshotKind_SNAPSHOT_KIND_FULL, KindReason: b.KindReason,
		CheckpointId: b.Checkpoint, BaseCheckpointId: b.BaseCheckpoint, FrozenMs: b.Frozen.Milliseconds(),
	}
	if b.Quiesced {
		out.Consistency = restorev1.Consistency_CONSISTENCY_QUIESCED
	}
	if b.Incremental {
		out.Kind = restorev1.SnapshotKind_SNAPSHOT_KIND_INCREMENTAL
	}
	for _, d := range b.Disks {
		t := nbd.Target{Network: "tcp", Address: exportAddress + ":" + strconv.Itoa(b.Port), Export: d.Export}
		out.Disks = append(out.Disks, &restorev1.SnapshotDisk{
			Name: d.Name, Size: d.Size, NbdUri: t.String(), ExportName: d.Export, DirtyBitmapContext: d.Bitmap, Source: d.Source,
		})
	}
	return out
}

// releaseSnapshot ends the job, deletes the checkpoint unless the backup
// completed (then it deletes the older ones: the new one is the base), and
// reports RELEASED.
func (a *Agent) releaseSnapshot(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	domain := guestDomain(as.Guest)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.cleanSnapshot(rctx, domain, s); err != nil {
		a.log.Error("snapshot release failed; it will be retried", "snapshot", s.Id, "err", err)
		return
	}
	a.mu.Lock()
	delete(a.snaps, s.Id)
	a.mu.Unlock()
	a.log.Info("snapshot released", "snapshot", s.Id, "guest", domain, "backup_completed", s.BackupCompleted)
	a.reportSnapshot(ctx, &restorev1.Snapshot{Id: s.Id, State: restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED})
}

// cleanSnapshot ends the snapshot's backup job and deletes its checkpoint
// or, after a completed backup, every older one.
func (a *Agent) cleanSnapshot(ctx context.Context, domain string, s *restorev1.Snapshot) error {
	if err := a.drv.EndBackup(ctx, a.cfg.HostID, domain); err != nil {
		return err
	}
	checkpoint := kvm.CheckpointName(s.Id)
	if !s.BackupCompleted {
		return a.drv.DeleteCheckpoint(ctx, domain, checkpoint)
	}
	cps, err := a.drv.Checkpoints(ctx, domain)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp != checkpoint {
			if err := a.drv.DeleteCheckpoint(ctx, domain, cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// loseSnapshot fails a snapshot an earlier run of the agent took: its
// export ended when that run stopped.
func (a *Agent) loseSnapshot(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.cleanSnapshot(rctx, guestDomain(as.Guest), &restorev1.Snapshot{Id: s.Id}); err != nil {
		a.log.Error("cleaning a lost snapshot failed; it will be retried", "snapshot", s.Id, "err", err)
		return
	}
	a.reportSnapshot(ctx, &restorev1.Snapshot{Id: s.Id, State: restorev1.SnapshotState_SNAPSHOT_STATE_FAILED,
		StateReason: fmt.Sprintf("the agent on host %s restarted while the snapshot was %s: its export ended; take a new snapshot", a.cfg.HostID, s.State)})
}

func (a *Agent) reportSnapshot(ctx context.Context, s *restorev1.Snapshot) {
	a.mu.Lock()
	client := a.client
	a.mu.Unlock()
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.ReportSnapshotStatus(a.ctx(rctx), &restorev1.ReportSnapshotStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, Snapshot: s})
		cancel()
		if err == nil || attempt == 5 || !retryable(err) || ctx.Err() != nil {
			if err != nil {
				a.log.Warn("snapshot report failed", "snapshot", s.Id, "state", s.State, "err", err)
			}
			return
		}
		time.Sleep(time.Duration(attempt) * time.Second)
	}
}

// extentsPage reads a page of a READY snapshot disk's extents from its
// export: the changed ones of an incremental, the allocated ones of a full.
func (a *Agent) extentsPage(ctx context.Context, snapshotID, disk string, offset int64, limit int) (*restorev1.ListSnapshotExtentsResponse, error) {
	a.mu.Lock()
	b := a.snaps[snapshotID]
	a.mu.Unlock()
	if b == nil {
		return nil, errNotHere{fmt.Sprintf("snapshot %s is not served by host %s", snapshotID, a.cfg.HostID)}
	}
	var d *kvm.BackupDisk
	for i := range b.Disks {
		if b.Disks[i].Name == disk {
			d = &b.Disks[i]
		}
	}
	if d == nil {
		return nil, errNotHere{fmt.Sprintf("snapshot %s has no disk %q", snapshotID, disk)}
	}
	metaContext := nbd.BaseAllocation
	if d.Bitmap != "" {
		metaContext = d.Bitmap
	}
	c, err := nbd.Dial(ctx, "tcp", exportAddress+":"+strconv.Itoa(b.Port), nbd.Options{Export: d.Export, MetaContexts: []string{metaContext}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return extentsFrom(c, metaContext, offset, limit)
}

// errNotHere is a channel answer of "not found".
type errNotHere struct{ msg string }

func (e errNotHere) Error() string { return e.msg }

// extentsFrom lists up to limit extents to read from offset on: dirty ones
// for a dirty bitmap, allocated non-zero ones for base:allocation. The next
// page token is the offset to go on from ("" at the end).
func extentsFrom(c *nbd.Conn, metaContext string, offset int64, limit int) (*restorev1.ListSnapshotExtentsResponse, error) {
	out := &restorev1.ListSnapshotExtentsResponse{DiskSize: c.Size()}
	const window = 1 << 30
	for off := offset; off < c.Size(); {
		ext, err := c.BlockStatus(metaContext, off, min(window, c.Size()-off))
		if err != nil {
			return nil, err
		}
		for _, e := range ext {
			if wanted(metaContext, e.Flags) {
				if len(out.Extents) == limit {
					out.NextPageToken = strconv.FormatInt(e.Offset, 10)
					return out, nil
				}
				n := len(out.Extents)
				if n > 0 && out.Extents[n-1].Offset+out.Extents[n-1].Length == e.Offset {
					out.Extents[n-1].Length += e.Length
				} else {
					out.Extents = append(out.Extents, &restorev1.Extent{Offset: e.Offset, Length: e.Length})
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
