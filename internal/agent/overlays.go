package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
)

// A restore's overlay is held to its growth limit (overlay_limit_mib):
// every overlayEvery the agent measures the files of each assigned
// restore's VM on the host and pauses the VM of one that reached its limit.
// A VM its hypervisor paused because a write met a full disk is reported
// the same way. A paused VIRTUALIZE restore is PAUSED with the reason,
// memory and disks kept, until deleted or expired; a VERIFY run fails
// (its verdict could not be reached).

// overlayEvery is how often overlays are measured: a guest may write past
// its limit by what it writes in that time.
var overlayEvery = 250 * time.Millisecond

// watchOverlays measures the overlays of the assigned restores until ctx
// ends.
func (p *restores) watchOverlays(ctx context.Context, g hypervisor.OverlayGuard) {
	t := time.NewTicker(overlayEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range p.crashes.assignedRestores() {
			if _, paused := p.pauses.paused(r.Id); paused || !lifecycle.HasVM(r.Mode) || r.OverlayLimitMib <= 0 || r.State == lifecycle.Paused {
				continue
			}
			used, err := g.OverlayBytes(ctx, r.Id)
			if err != nil || used < uint64(r.OverlayLimitMib)<<20 {
				continue
			}
			p.pauseVM(ctx, g, r, fmt.Sprintf("its overlay reached its growth limit: its files take %d MiB of the %d MiB allowed (overlay_limit_mib); the VM is paused, memory and disks kept (delete the restore, or restore again with a larger limit)",
				used>>20, r.OverlayLimitMib))
		}
	}
}

// pauseVM pauses the VM of a restore over its limit and reports it.
func (p *restores) pauseVM(ctx context.Context, g hypervisor.OverlayGuard, r *restorev1.Restore, why string) {
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		p.vmStopped(ctx, hypervisor.VMEvent{RestoreID: r.Id, Reason: why})
		return
	}
	if err := g.PauseVM(ctx, r.Id); err != nil {
		p.log.Error("pausing a VM over its overlay's limit; trying again", "restore", r.Id, "err", err)
		return
	}
	p.vmPaused(ctx, r.Id, why)
}

// vmPaused reports a restore whose VM is paused (by this agent, or by its
// hypervisor on a full disk) PAUSED with the reason, once; a VERIFY run
// paused on a full disk fails.
func (p *restores) vmPaused(ctx context.Context, id, why string) {
	r := p.crashes.restore(id)
	if r == nil {
		return // not assigned here: not ours to report
	}
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		p.vmStopped(ctx, hypervisor.VMEvent{RestoreID: id, Reason: why})
		return
	}
	if !p.pauses.note(id, why) {
		return
	}
	p.log.Warn("a restore's VM is paused", "restore", id, "why", why)
	// A boot being watched cannot go on; the report follows its end (a
	// pass reports again if this one gives up: keepRunning).
	p.work.preempt(ctx, id, func(wctx context.Context) { p.report(wctx, id, lifecycle.Paused, why, nil) }, nil)
}

// pauses are the restores whose VM this run saw paused, with why: they
// are not booted again, and a report lost on the way is made again.
type pauses struct {
	mu  sync.Mutex
	why map[string]string
}

// note records a pause; it says whether it is new.
func (ps *pauses) note(id, why string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.why[id]; ok {
		return false
	}
	if ps.why == nil {
		ps.why = map[string]string{}
	}
	ps.why[id] = why
	return true
}

// paused says whether (and why) a restore's VM was paused in this run.
func (ps *pauses) paused(id string) (string, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	why, ok := ps.why[id]
	return why, ok
}

// forget drops the restores no longer assigned.
func (ps *pauses) forget(assigned map[string]*restorev1.Restore) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id := range ps.why {
		if assigned[id] == nil {
			delete(ps.why, id)
		}
	}
}

// assignedRestores are the restores the last pass kept running, by id.
func (c *crashes) assignedRestores() []*restorev1.Restore {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*restorev1.Restore, 0, len(c.assigned))
	for _, r := range c.assigned {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *restorev1.Restore) int {
		if a.Id < b.Id {
			return -1
		}
		return 1
	})
	return out
}
