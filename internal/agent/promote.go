package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/version"
)

// promoteLimit bounds a promotion's copy: whole disks, with progress.
const promoteLimit = 24 * time.Hour

// keepPromoting is reconcile's part for promotions: a PROMOTING restore is
// promoted (once: the claim holds it), and one the control plane took back
// to RUNNING (cancelled) while this run promotes it has its copy stopped.
// It says whether it took the restore.
func (p *restores) keepPromoting(ctx context.Context, r *restorev1.Restore) bool {
	switch {
	case r.State == lifecycle.Promoting:
		p.work.goWork(ctx, r.Id, func(rctx context.Context) { p.promote(rctx, r) })
		return true
	case r.State == lifecycle.Running && p.promoting.has(r.Id):
		p.log.Info("promotion cancelled: stopping the copy", "restore", r.Id)
		p.work.cancel(r.Id)
		return true
	}
	return false
}

// promote copies a restore's disks to its storage pool, pivots and hands
// it over, reporting progress (PROMOTING) and the end: PROMOTED, or
// RUNNING with the reason when the copy failed or was cancelled (the
// restore goes on as before).
func (p *restores) promote(ctx context.Context, r *restorev1.Restore) {
	pr, ok := p.hv.(hypervisor.Promoter)
	if !ok || p.caps.Need(hypervisor.Promotion, "this host") != nil {
		p.report(ctx, r.Id, lifecycle.Running, fmt.Sprintf("host %s cannot promote restores: its hypervisor lacks the promotion capability", p.hostID), nil)
		return
	}
	if done, ok := pr.Promoted(ctx, r.Id); ok {
		p.reportPromoted(ctx, r.Id, done) // handed over before a restart
		return
	}
	p.promoting.add(r.Id)
	defer p.promoting.remove(r.Id)
	g := p.progressIn(r.Id, lifecycle.Promoting)
	pctx, cancel := context.WithTimeout(ctx, promoteLimit)
	defer cancel()
	done, err := pr.Promote(pctx, hypervisor.PromoteSpec{ID: r.Id, Pool: r.GetPromotion().GetStoragePool(), Progress: func(pg hypervisor.Progress) {
		g.Progress(ctx, pg)
	}})
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// Cancelled (or a teardown asked for): the copy is gone, the
		// restore runs from its overlay; the control plane said so.
		p.log.Info("promotion stopped; the copies were removed", "restore", r.Id)
	case err != nil:
		p.log.Error("promotion failed", "restore", r.Id, "err", err)
		p.report(context.WithoutCancel(ctx), r.Id, lifecycle.Running, "the promotion failed, the restore runs on from its overlay: "+err.Error(), nil)
	default:
		p.reportPromoted(context.WithoutCancel(ctx), r.Id, done)
	}
}

// reportPromoted reports the hand-over, retried: it cannot be asked for
// again by anything but the next pass.
func (p *restores) reportPromoted(ctx context.Context, id string, done hypervisor.Promoted) {
	req := &restorev1.ReportRestoreStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: id, State: lifecycle.Promoted,
		StateReason: clampReason(fmt.Sprintf("handed over as domain %s on %s: %s", done.Domain, strings.Join(done.Disks, ", "), "no longer Restored's")),
		Promotion:   &restorev1.Promotion{Domain: done.Domain, DiskPaths: done.Disks}}
	retry{attempts: 8, step: 2 * time.Second, outlive: true}.do(ctx, func() error { return p.rep.reportRestore(ctx, req) })
}
