package agent

import (
	"context"
	"log/slog"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentmetrics"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/version"
)

// linkWanted says whether a running restore's link must be brought up: it
// booted held down (link_down_reason says why), the control plane no
// longer holds it, and this run has not made sure yet. A restore never
// held down is never touched.
func (p *restores) linkWanted(r *restorev1.Restore) bool {
	if n := r.GetNetwork(); n.GetLinkDown() || n.GetLinkDownReason() == "" {
		return false
	}
	return !p.linkUp.has(r.Id)
}

// bringLinkUp brings a restore's link up (a caller confirmed its
// production machine is gone, or it never was down).
func (p *restores) bringLinkUp(ctx context.Context, id string) {
	lctx, cancel := context.WithTimeout(ctx, p.limits.boot)
	err := p.hv.LinkUp(lctx, id)
	cancel()
	if err != nil {
		p.log.Warn("bringing the restore's link up failed; retrying at the next pass", "restore", id, "err", err)
		return
	}
	p.linkUp.add(id)
}

// timeouts bound each call into the hypervisor.
type timeouts struct {
	// list bounds listing what the host owns; teardown one teardown;
	// prepare making a restore's overlays and definition; boot starting it.
	list, teardown, prepare, boot time.Duration
}

var defaultTimeouts = timeouts{list: 30 * time.Second, teardown: time.Minute, prepare: 2 * time.Minute, boot: 2 * time.Minute}

// uploadLimit bounds preparing a restore whose disks are uploaded to a
// remote hypervisor (VMware): hours for large disks, with progress.
const uploadLimit = 24 * time.Hour

// restores is the part of the agent that owns the host's restores: it
// makes the hypervisor match the restores assigned to the host (boots what
// must run, brings a held-down link up when asked, tears down what must
// go, removes what nothing owns) and reports every step. Its state is the
// work in flight and the links it knows are up.
type restores struct {
	hostID  string
	hv      hypervisor.Restorer
	caps    hypervisor.Set
	catalog *catalog
	rep     reporter
	boot    *bootWatcher
	verify  *verifications
	ev      *evidence
	limits  timeouts
	log     *slog.Logger
	work    *claims
	// bridges are the host bridges this agent offers (its --bridge flags).
	bridges []*restorev1.HostBridge
	// public is an export's URI as its reader reaches it (the NBD gate),
	// gateCA the CA its certificate chains to (nil: the driver's own URI).
	public func(export string) string
	gateCA string
	// conversions bounds the image files made at once (IMAGE restores
	// take no VM capacity of the host: this is their bound).
	conversions chan struct{}

	// linkUp are the restores whose link this run saw or brought up;
	// promoting those whose promotion this run is copying; served the
	// exports whose RUNNING report this run made.
	linkUp, promoting, served idSet
	// crashes are the restores whose VM stopped unexpectedly (crashes.go),
	// pauses those whose VM was paused (overlays.go).
	crashes crashes
	pauses  pauses
	// metrics is nil without --metrics-addr.
	metrics *agentmetrics.Metrics
}

// reconcile makes the hypervisor match the host's full desired state.
func (p *restores) reconcile(ctx context.Context, as []*restorev1.Assignment) {
	lctx, cancel := context.WithTimeout(ctx, p.limits.list)
	owned, err := p.hv.Owned(lctx)
	cancel()
	if err != nil {
		p.log.Error("list what the host owns; trying again at the next pass", "err", err)
		return
	}
	running := map[string]bool{}
	for _, o := range owned {
		running[o.ID] = o.Running
	}
	wanted := map[string]bool{}
	keep := map[string]*restorev1.Restore{}
	byState := map[string]int{}
	for _, a := range as {
		byState[a.Restore.State.String()]++
		if a.Desired == restorev1.DesiredState_DESIRED_STATE_RUNNING {
			keep[a.Restore.Id] = a.Restore
		}
	}
	p.crashes.assign(keep)
	p.pauses.forget(keep)
	p.metrics.SetRestores(byState)
	for _, a := range as {
		r := a.Restore
		if !restoreIDPattern.MatchString(r.Id) {
			p.log.Error("assignment refused: not a restore id", "restore", r.Id)
			continue
		}
		switch a.Desired {
		case restorev1.DesiredState_DESIRED_STATE_RUNNING:
			wanted[r.Id] = true
			p.keepRunning(ctx, r, running[r.Id])
		case restorev1.DesiredState_DESIRED_STATE_DESTROYED:
			wanted[r.Id] = true
			// A teardown asked for while the restore is still booting stops
			// the boot now; the teardown follows as soon as it has stopped.
			p.work.cancel(r.Id)
			p.work.goWork(ctx, r.Id, func(context.Context) { p.tearDownAndReport(ctx, r.Id) })
		}
	}
	// Orphans: restores the host holds something of that nothing wants.
	for _, o := range owned {
		if wanted[o.ID] {
			continue
		}
		id := o.ID
		p.work.goWork(ctx, id, func(context.Context) {
			p.log.Warn("removing an orphaned restore", "restore", id, "vm", o.VM)
			if err := p.teardown(ctx, id); err != nil {
				p.log.Error("orphan teardown failed; it will be retried", "restore", id, "err", err)
			}
		})
	}
	p.ev.prune()
}

// keepRunning boots a restore whose VM is not running, or adopts one that
// runs (verifying its boot if the control plane never heard the outcome:
// the agent restarted meanwhile).
func (p *restores) keepRunning(ctx context.Context, r *restorev1.Restore, vmRunning bool) {
	if p.keepPromoting(ctx, r) {
		return
	}
	if p.crashes.stale(r) {
		return // ended in this run; the assignment that says so is on its way
	}
	if r.State == lifecycle.Paused {
		return // paused on its host; it stays so until deleted or expired
	}
	if why, paused := p.pauses.paused(r.Id); paused {
		// Paused in this run, the report not taken yet (or lost): again.
		p.work.goWork(ctx, r.Id, func(wctx context.Context) { p.report(wctx, r.Id, lifecycle.Paused, why, nil) })
		return
	}
	if why, crashed := p.crashes.crashed(r.Id); crashed {
		// Its VM stopped unexpectedly in this run: it is FAILED, not
		// booted again (a report lost on the way is made again).
		p.work.goWork(ctx, r.Id, func(wctx context.Context) { p.failCrashed(wctx, r.Id, why) })
		return
	}
	if vmRunning && lifecycle.BootSettled(r.State) {
		if p.linkWanted(r) {
			p.work.goWork(ctx, r.Id, func(rctx context.Context) { p.bringLinkUp(rctx, r.Id) })
		}
		return // adopted: nothing else to do
	}
	p.work.goWork(ctx, r.Id, func(rctx context.Context) {
		switch {
		case vmRunning && r.Mode == restorev1.Mode_MODE_IMAGE:
			p.adoptImage(rctx, r)
			return
		case vmRunning && r.Mode == restorev1.Mode_MODE_EXPORT:
			// Served, and the assignment still says PREPARING: one sent
			// before this run's report (nothing to do), or the control
			// plane never heard where (the agent restarted, or the report
			// was lost): serve it again.
			if !p.served.has(r.Id) {
				p.startExport(rctx, r)
			}
			return
		case r.Mode == restorev1.Mode_MODE_EXPORT && r.State != lifecycle.Running && p.served.has(r.Id):
			// The pass looked before this run's export was serving and
			// its assignment predates the RUNNING report: serving it again
			// would cut the reader this run just told about.
			return
		}
		if vmRunning {
			p.log.Info("adopting a restore whose boot was not confirmed", "restore", r.Id)
			p.finish(rctx, r, r.GetUpdateTime().AsTime(), true)
		} else {
			p.start(rctx, r)
		}
		// A teardown cancelled the boot in flight: finish it now (a crash
		// that cancelled it is failed by vmStopped).
		if _, crashed := p.crashes.crashed(r.Id); rctx.Err() != nil && ctx.Err() == nil && !crashed {
			p.tearDownAndReport(ctx, r.Id)
		}
	})
}

// teardown removes everything of the restore. It is idempotent.
func (p *restores) teardown(ctx context.Context, id string) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.limits.teardown)
	defer cancel()
	return p.hv.Teardown(tctx, id)
}

// tearDownAndReport tears a restore down and reports it DESTROYED; a
// failed teardown is retried at the next pass (the assignment stays).
func (p *restores) tearDownAndReport(ctx context.Context, id string) {
	if err := p.teardown(ctx, id); err != nil {
		p.log.Error("teardown failed; it will be retried", "restore", id, "err", err)
		return
	}
	p.report(ctx, id, lifecycle.Destroyed, "torn down", nil)
}

// report tells the control plane what happened to a restore. A lost report
// is not fatal: the assignment stream keeps asking for the desired state.
func (p *restores) report(ctx context.Context, id string, state restorev1.RestoreState, reason string, boot *restorev1.Boot) {
	_ = p.rep.reportRestore(ctx, &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: id, State: state, StateReason: clampReason(reason), Boot: boot,
	})
}

// reportVerdict reports a VERIFY run's state with its evidence. It is
// retried for a while, even after the run's context ended: unlike progress,
// a verdict cannot be asked for again.
func (p *restores) reportVerdict(ctx context.Context, id string, state restorev1.RestoreState, reason string, boot *restorev1.Boot, v *restorev1.Verification) {
	req := &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: id, State: state, StateReason: clampReason(reason), Boot: boot, Verification: v,
	}
	retry{attempts: 8, step: 2 * time.Second, outlive: true}.do(ctx, func() error { return p.rep.reportRestore(ctx, req) })
}
