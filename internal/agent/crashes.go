package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A restore's VM that stops without being asked to (its QEMU died, the
// guest crashed) is FAILED with the reason, at once: the driver's watch
// says so (hypervisor.VMWatcher), and the restore is not booted again.

// crashes are the restores whose VM this run saw stop unexpectedly, with
// why, and those it ended for good; the assigned ones are those the last
// reconcile pass was asked to keep running (only those are acted on).
type crashes struct {
	mu       sync.Mutex
	why      map[string]string
	assigned map[string]*restorev1.Restore
	// ended are the restores this run ended for good (a verdict given and
	// torn down, a failure reported), and when: an assignment from before
	// that (on its way while the report was) does not boot them again.
	ended map[string]time.Time
}

// end records that a restore was ended for good now.
func (c *crashes) end(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended == nil {
		c.ended = map[string]time.Time{}
	}
	c.ended[id] = time.Now()
}

// stale says whether r is an assignment from before this run ended it.
func (c *crashes) stale(r *restorev1.Restore) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.ended[r.Id]
	return ok && !r.GetUpdateTime().AsTime().After(at)
}

// note records a crash of an assigned restore; it says whether it is new.
func (c *crashes) note(id, why string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.assigned[id] == nil || c.why[id] != "" {
		return false
	}
	if c.why == nil {
		c.why = map[string]string{}
	}
	c.why[id] = why
	return true
}

// crashed says whether (and why) a restore's VM crashed in this run.
func (c *crashes) crashed(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	why, ok := c.why[id]
	return why, ok
}

// restore is an assigned restore as the last pass saw it.
func (c *crashes) restore(id string) *restorev1.Restore {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assigned[id]
}

// assign records the restores a pass keeps running; crashes of restores no
// longer assigned are forgotten.
func (c *crashes) assign(rs map[string]*restorev1.Restore) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.assigned = rs
	for id := range c.why {
		if rs[id] == nil {
			delete(c.why, id)
		}
	}
	for id := range c.ended {
		if rs[id] == nil {
			delete(c.ended, id)
		}
	}
}

// watchVMs follows the driver's watch for the agent's life, watching again
// when it breaks (libvirtd restarted).
func (p *restores) watchVMs(ctx context.Context, w hypervisor.VMWatcher) {
	for ctx.Err() == nil {
		err := w.WatchVMs(ctx, func(ev hypervisor.VMEvent) {
			if ev.Paused {
				p.vmPaused(ctx, ev.RestoreID, ev.Reason)
				return
			}
			p.vmStopped(ctx, ev)
		})
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("watching the VMs' lifecycle stopped; watching again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// vmStopped fails a restore whose VM stopped unexpectedly: the work in
// flight for it (a boot being verified) is stopped, then it is torn down
// and reported FAILED with the reason.
func (p *restores) vmStopped(ctx context.Context, ev hypervisor.VMEvent) {
	if !p.crashes.note(ev.RestoreID, ev.Reason) {
		return
	}
	id := ev.RestoreID
	p.log.Warn("a restore's VM stopped unexpectedly", "restore", id, "why", ev.Reason)
	p.work.preempt(ctx, id, func(wctx context.Context) { p.failCrashed(wctx, id, ev.Reason) }, func() {
		p.log.Error("a crashed restore's work did not end; the next pass fails it", "restore", id)
	})
}

// failCrashed tears a crashed restore down and reports it FAILED with the
// reason; a VERIFY run's verification is FAILED with it (its VM stopped
// before the verdict: no evidence could say otherwise).
func (p *restores) failCrashed(ctx context.Context, id, why string) {
	r := p.crashes.restore(id)
	if r == nil || r.Mode != restorev1.Mode_MODE_VERIFY {
		p.fail(ctx, id, "the VM", errors.New("its VM stopped unexpectedly: "+why))
		return
	}
	if err := p.teardown(ctx, id); err != nil {
		p.log.Error("unwinding a crashed verification; the next pass retries it", "restore", id, "err", err)
		return
	}
	now := timestamppb.Now()
	v := &restorev1.Verification{Id: id, StartTime: r.GetUpdateTime(), EndTime: now, Verdict: restorev1.Verdict_VERDICT_FAILED,
		Reason: "the VM stopped unexpectedly during the verification: " + why}
	if v.StartTime == nil {
		v.StartTime = now
	}
	p.crashes.end(id)
	p.reportVerdict(ctx, id, lifecycle.Failed, "verification failed: "+v.Reason, nil, v)
}
