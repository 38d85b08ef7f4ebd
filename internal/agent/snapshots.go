package agent

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/version"
)

// snapshots is the part of the agent that owns the host's snapshots for
// backup jobs: it takes the REQUESTED ones, serves them until they are
// released, and fails the ones an earlier run took (their exports ended
// with it). Its state is what this run serves and has taken.
type snapshots struct {
	hostID string
	hv     hypervisor.Snapshotter
	caps   hypervisor.Set
	rep    reporter
	log    *slog.Logger
	work   *claims
	// public is an export's URI as backup jobs reach it (the NBD gate),
	// gateCA the CA its certificate chains to; nil reports the
	// hypervisor's own URI (tests without a gate).
	public func(export string) string
	gateCA string

	mu sync.Mutex
	// serving are the READY snapshots this run serves; taken the ones it
	// took or is taking (never taken twice). Released ones leave both.
	serving map[string]*hypervisor.Snapshot
	taken   map[string]bool
}

func newSnapshots(hostID string, hv hypervisor.Snapshotter, caps hypervisor.Set, rep reporter, log *slog.Logger) *snapshots {
	return &snapshots{hostID: hostID, hv: hv, caps: caps, rep: rep, log: log, work: newClaims(),
		serving: map[string]*hypervisor.Snapshot{}, taken: map[string]bool{}}
}

// reconcile acts on the host's snapshot assignments: every snapshot of
// the host that is not RELEASED or FAILED.
func (p *snapshots) reconcile(ctx context.Context, ss []*restorev1.SnapshotAssignment) {
	assigned := map[string]bool{}
	for _, as := range ss {
		assigned[as.Snapshot.GetId()] = true
	}
	p.mu.Lock()
	for id := range p.taken {
		if !assigned[id] {
			delete(p.taken, id) // ended: the control plane no longer asks
		}
	}
	p.mu.Unlock()
	for _, as := range ss {
		s := as.Snapshot
		if !restoreIDPattern.MatchString(s.Id) || as.Guest == nil {
			p.log.Error("snapshot assignment refused", "snapshot", s.Id)
			continue
		}
		p.mu.Lock()
		ours := p.taken[s.Id]
		p.mu.Unlock()
		switch {
		case as.Release:
			p.work.goWork(ctx, s.Id, func(context.Context) { p.release(ctx, as) })
		case ours:
			// In hand, or being taken.
		case s.State == lifecycle.SnapRequested:
			p.work.goWork(ctx, s.Id, func(wctx context.Context) {
				p.mu.Lock()
				p.taken[s.Id] = true
				p.mu.Unlock()
				p.take(wctx, as)
			})
		default: // PREPARING or READY, but not ours: a previous run took it.
			p.work.goWork(ctx, s.Id, func(context.Context) { p.lose(ctx, as) })
		}
	}
}

// guestName is how the hypervisor knows the guest: its name, else its UUID.
func guestName(g *restorev1.Guest) string { return cmp.Or(g.Name, g.Uuid) }

func (p *snapshots) take(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	p.report(ctx, &restorev1.Snapshot{Id: s.Id, State: lifecycle.SnapPreparing, StateReason: "checking the chain and starting the export"})
	spec := hypervisor.SnapshotSpec{ID: s.Id, Guest: guestName(as.Guest), GuestUUID: as.Guest.Uuid, Quiesce: s.Quiesce, Incremental: s.Incremental}
	if b := as.Base; b != nil && b.CheckpointId != "" {
		spec.Base = &hypervisor.SnapshotBase{Checkpoint: b.CheckpointId, Sources: map[string]string{}, Sizes: map[string]int64{}, ChangeIDs: map[string]string{}}
		for _, d := range b.Disks {
			spec.Base.Sources[d.Name], spec.Base.Sizes[d.Name], spec.Base.ChangeIDs[d.Name] = d.Source, d.Size, d.ChangeId
		}
	}
	err := p.caps.Need(hypervisor.Snapshots, "this host")
	var snap *hypervisor.Snapshot
	if err == nil {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		snap, err = p.hv.TakeSnapshot(tctx, spec)
		cancel()
	}
	if err != nil {
		p.log.Error("snapshot failed", "snapshot", s.Id, "guest", spec.Guest, "err", err)
		p.report(ctx, &restorev1.Snapshot{Id: s.Id, State: lifecycle.SnapFailed, StateReason: clampReason(err.Error())})
		return
	}
	p.mu.Lock()
	p.serving[s.Id] = snap
	p.mu.Unlock()
	p.log.Info("snapshot ready", "snapshot", s.Id, "guest", spec.Guest, "incremental", snap.Incremental, "quiesced", snap.Quiesced, "frozen", snap.Frozen)
	p.report(ctx, p.readySnapshot(snap))
}

// socketOf is where a served snapshot's exports are (its NBD server's
// unix socket), for the gate.
func (p *snapshots) socketOf(id string) (string, bool) {
	p.mu.Lock()
	snap := p.serving[id]
	p.mu.Unlock()
	if snap == nil || len(snap.Disks) == 0 {
		return "", false
	}
	t, err := nbd.ParseURI(snap.Disks[0].URI)
	if err != nil || t.Network != "unix" {
		return "", false
	}
	return t.Address, true
}

// readySnapshot is the READY report: what was obtained and where a backup
// job reads it.
func (p *snapshots) readySnapshot(b *hypervisor.Snapshot) *restorev1.Snapshot {
	out := &restorev1.Snapshot{
		Id: b.ID, State: lifecycle.SnapReady, StateReason: "the exports are readable",
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
		uri := d.URI
		if p.public != nil {
			uri = p.public(d.Export)
			out.NbdCaCert = p.gateCA
		}
		out.Disks = append(out.Disks, &restorev1.SnapshotDisk{
			Name: d.Name, Size: d.Size, NbdUri: uri, ExportName: d.Export, DirtyBitmapContext: d.Bitmap, Source: d.Source, ChangeId: d.ChangeID,
		})
	}
	return out
}

// release stops serving, keeps or drops the checkpoint as the backup
// ended, and reports RELEASED.
func (p *snapshots) release(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	spec := hypervisor.ReleaseSpec{ID: s.Id, Guest: guestName(as.Guest), GuestUUID: as.Guest.Uuid, Completed: s.BackupCompleted}
	if err := p.hv.ReleaseSnapshot(rctx, spec); err != nil {
		p.log.Error("snapshot release failed; it will be retried", "snapshot", s.Id, "err", err)
		return
	}
	p.mu.Lock()
	delete(p.serving, s.Id)
	delete(p.taken, s.Id)
	p.mu.Unlock()
	p.log.Info("snapshot released", "snapshot", s.Id, "guest", spec.Guest, "backup_completed", s.BackupCompleted)
	p.report(ctx, &restorev1.Snapshot{Id: s.Id, State: lifecycle.SnapReleased})
}

// lose fails a snapshot an earlier run of the agent took: its export ended
// when that run stopped.
func (p *snapshots) lose(ctx context.Context, as *restorev1.SnapshotAssignment) {
	s := as.Snapshot
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.hv.ReleaseSnapshot(rctx, hypervisor.ReleaseSpec{ID: s.Id, Guest: guestName(as.Guest), GuestUUID: as.Guest.Uuid}); err != nil {
		p.log.Error("cleaning a lost snapshot failed; it will be retried", "snapshot", s.Id, "err", err)
		return
	}
	p.report(ctx, &restorev1.Snapshot{Id: s.Id, State: lifecycle.SnapFailed,
		StateReason: fmt.Sprintf("the agent on host %s restarted while the snapshot was %s: its export ended; take a new snapshot", p.hostID, s.State)})
}

func (p *snapshots) report(ctx context.Context, s *restorev1.Snapshot) {
	req := &restorev1.ReportSnapshotStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: p.hostID, Snapshot: s}
	retry{attempts: 5, step: time.Second}.do(ctx, func() error { return p.rep.reportSnapshot(ctx, req) })
}

// errNotHere is a channel answer of "not found".
type errNotHere struct{ msg string }

func (e errNotHere) Error() string { return e.msg }

// extentsPage reads a page of a served snapshot disk's extents.
func (p *snapshots) extentsPage(ctx context.Context, snapshotID, disk string, offset int64, limit int) (*restorev1.ListSnapshotExtentsResponse, error) {
	p.mu.Lock()
	snap := p.serving[snapshotID]
	p.mu.Unlock()
	if snap == nil {
		return nil, errNotHere{fmt.Sprintf("snapshot %s is not served by host %s", snapshotID, p.hostID)}
	}
	known := false
	for _, d := range snap.Disks {
		known = known || d.Name == disk
	}
	if !known {
		return nil, errNotHere{fmt.Sprintf("snapshot %s has no disk %q", snapshotID, disk)}
	}
	page, err := p.hv.ChangedExtents(ctx, snap, disk, offset, limit)
	if err != nil {
		return nil, err
	}
	out := &restorev1.ListSnapshotExtentsResponse{DiskSize: page.DiskSize}
	for _, e := range page.Extents {
		out.Extents = append(out.Extents, &restorev1.Extent{Offset: e.Offset, Length: e.Length})
	}
	if page.Next >= 0 {
		out.NextPageToken = strconv.FormatInt(page.Next, 10)
	}
	return out, nil
}
