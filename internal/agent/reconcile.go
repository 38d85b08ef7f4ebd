package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/netiso"
	"github.com/restored/restored/internal/vmspec"
)

// reconcile makes libvirt match the host's full desired state: it starts
// what must run and is not there, tears down what must go, and removes
// Restored domains and work dirs that no assignment owns.
func (a *Agent) reconcile(ctx context.Context, as []*restorev1.Assignment) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	doms, err := a.drv.List(lctx)
	cancel()
	if err != nil {
		a.log.Error("list libvirt domains", "err", err)
		return
	}
	// Only this host's domains: another agent's (or a test's) are not ours
	// to adopt or remove, even on a shared libvirtd.
	mine := doms[:0]
	for _, d := range doms {
		if d.Meta.HostID == a.cfg.HostID {
			mine = append(mine, d)
		}
	}
	doms = mine
	running := map[string]bool{}
	for _, d := range doms {
		running[d.Meta.RestoreID] = true
	}
	wanted := map[string]bool{}
	for _, as := range as {
		r := as.Restore
		switch as.Desired {
		case restorev1.DesiredState_DESIRED_STATE_RUNNING:
			wanted[r.Id] = true
			if running[r.Id] {
				// Adopted: already there. If the boot was never confirmed (the
				// agent restarted meanwhile), verify it now.
				if lifecycle.BootSettled(r.State) {
					continue
				}
				if rctx, ok := a.claim(ctx, r.Id); ok {
					go func() {
						defer a.release(r.Id)
						a.log.Info("adopting a restore whose boot was not confirmed", "restore", r.Id)
						begin := r.GetUpdateTime().AsTime()
						a.finish(rctx, r, begin, true)
						a.teardownIfCancelled(ctx, rctx, r.Id)
					}()
				}
				continue
			}
			if rctx, ok := a.claim(ctx, r.Id); ok {
				go func() {
					defer a.release(r.Id)
					a.start(rctx, r)
					a.teardownIfCancelled(ctx, rctx, r.Id)
				}()
			}
		case restorev1.DesiredState_DESIRED_STATE_DESTROYED:
			// A teardown asked for while the restore is still booting stops
			// the boot now; the teardown follows as soon as it has stopped.
			a.cancel(r.Id)
			if _, ok := a.claim(ctx, r.Id); ok {
				go func() {
					defer a.release(r.Id)
					if err := a.teardown(ctx, r.Id); err != nil {
						a.log.Error("teardown failed; it will be retried", "restore", r.Id, "err", err)
						return
					}
					a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_DESTROYED, "torn down", nil)
				}()
			}
		}
	}
	// Orphans: Restored domains and work dirs nothing wants any more.
	for _, d := range doms {
		id := d.Meta.RestoreID
		if wanted[id] {
			continue
		}
		if _, ok := a.claim(ctx, id); ok {
			go func() {
				defer a.release(id)
				a.log.Warn("removing an orphaned restore domain", "restore", id, "domain", d.Name)
				if err := a.teardown(ctx, id); err != nil {
					a.log.Error("orphan teardown failed", "restore", id, "err", err)
				}
			}()
		}
	}
	a.pruneEvidence()
	entries, _ := os.ReadDir(filepath.Join(a.cfg.WorkDir, "restores"))
	for _, e := range entries {
		id := e.Name()
		if wanted[id] || running[id] {
			continue
		}
		if _, ok := a.claim(ctx, id); ok {
			go func() {
				defer a.release(id)
				a.log.Warn("removing an orphaned work dir", "restore", id)
				_ = os.RemoveAll(a.restoreDir(id))
			}()
		}
	}
}

// claim marks a restore as being worked on and returns a context that
// cancel ends; ok is false when someone already works on it.
func (a *Agent) claim(ctx context.Context, id string) (context.Context, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, busy := a.inflight[id]; busy {
		return nil, false
	}
	rctx, cancel := context.WithCancel(ctx)
	a.inflight[id] = cancel
	return rctx, true
}

// cancel stops whatever works on a restore (a boot being verified).
func (a *Agent) cancel(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.inflight[id]; ok {
		c()
	}
}

func (a *Agent) release(id string) {
	a.mu.Lock()
	if c, ok := a.inflight[id]; ok {
		c()
		delete(a.inflight, id)
	}
	a.mu.Unlock()
}

func (a *Agent) restoreDir(id string) string {
	return filepath.Join(a.cfg.WorkDir, "restores", strings.ReplaceAll(id, "/", "_"))
}

// serialPath is the restore's serial console log (written by QEMU).
func (a *Agent) serialPath(id string) string { return filepath.Join(a.restoreDir(id), "serial.log") }

// teardown destroys and undefines the domain and removes its work dir. It
// is idempotent.
func (a *Agent) teardown(ctx context.Context, id string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := a.drv.Destroy(dctx, vmspec.DomainName(id)); err != nil {
		return err
	}
	// The restore's isolated bridge, if it had one: nothing else uses it.
	if err := netiso.Remove(dctx, netiso.BridgeName(id)); err != nil {
		return err
	}
	return os.RemoveAll(a.restoreDir(id))
}

// teardownIfCancelled finishes a teardown that cancelled a boot in flight.
func (a *Agent) teardownIfCancelled(ctx, rctx context.Context, id string) {
	if rctx.Err() == nil || ctx.Err() != nil {
		return
	}
	if err := a.teardown(ctx, id); err != nil {
		a.log.Error("teardown failed; it will be retried", "restore", id, "err", err)
		return
	}
	a.report(ctx, id, restorev1.RestoreState_RESTORE_STATE_DESTROYED, "torn down", nil)
}
