package agent

import (
	"context"
	"fmt"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
)

// start boots one restore: prepare (overlays, network, definition), boot,
// verify the boot. Any failure leaves nothing behind and reports FAILED
// with the reason.
func (p *restores) start(ctx context.Context, r *restorev1.Restore) {
	switch r.Mode {
	case restorev1.Mode_MODE_EXPORT:
		p.startExport(ctx, r)
		return
	case restorev1.Mode_MODE_IMAGE:
		p.startImage(ctx, r)
		return
	}
	p.report(ctx, r.Id, lifecycle.Preparing, "making the overlay", nil)
	begin := time.Now()
	if err := p.prepareAndBoot(ctx, r); err != nil {
		p.fail(ctx, r.Id, "restore", err)
		return
	}
	p.report(ctx, r.Id, lifecycle.Booting, "domain started; waiting for a boot signal", nil)
	p.finish(ctx, r, begin, false)
}

// fail ends a restore whose start failed: what it made is torn down, then
// it is reported FAILED with the reason. A teardown asked for meanwhile
// (ctx ended) follows by itself; a failed unwinding leaves it for the next
// pass, which tears it down and starts again.
func (p *restores) fail(ctx context.Context, id, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	p.log.Error(what+" failed", "restore", id, "err", err)
	if terr := p.teardown(ctx, id); terr != nil {
		p.log.Error("unwinding a failed "+what, "restore", id, "err", terr)
		return
	}
	p.crashes.end(id)
	p.report(ctx, id, lifecycle.Failed, err.Error(), nil)
}

func (p *restores) prepareAndBoot(ctx context.Context, r *restorev1.Restore) error {
	spec, err := p.spec(r)
	if err != nil {
		return err
	}
	g := p.progressOf(r.Id)
	spec.Progress = func(pr hypervisor.Progress) { g.Progress(ctx, pr) }
	pctx, cancel := context.WithTimeout(ctx, p.limits.prepare)
	defer cancel()
	if err := p.hv.Prepare(pctx, spec); err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, p.limits.boot)
	defer cancel()
	return p.hv.Boot(bctx, r.Id)
}

// spec is what the hypervisor needs of a restore: the request, its
// recovery point's disks with their chains, its firmware and OS.
func (p *restores) spec(r *restorev1.Restore) (hypervisor.RestoreSpec, error) {
	if err := p.caps.Need(hypervisor.Restores, "this host"); err != nil {
		return hypervisor.RestoreSpec{}, err
	}
	rp, ok := p.catalog.lookup(r.RecoveryPointId)
	switch {
	case !ok:
		return hypervisor.RestoreSpec{}, fmt.Errorf("recovery point %s is not in this host's repository", r.RecoveryPointId)
	case !rp.Valid:
		return hypervisor.RestoreSpec{}, fmt.Errorf("recovery point %s is invalid: %s", rp.ID, rp.Reason)
	case rp.Tenant != r.Tenant:
		return hypervisor.RestoreSpec{}, fmt.Errorf("recovery point %s does not belong to tenant %s", rp.ID, r.Tenant)
	}
	spec := hypervisor.RestoreSpec{
		ID: r.Id, Tenant: r.Tenant, ExpireAt: r.ExpireTime.AsTime(), VCPUs: int(r.Vcpus), MemoryMiB: r.MemoryMib,
		Firmware: p.firmwareOf(r), OS: rp.Manifest.OS, Network: kinds.NetworkFromAPI(r.GetNetwork().GetKind()),
	}
	switch spec.Network {
	case kinds.Bridged:
		// The control plane places BRIDGED restores only where the bridge is
		// offered; the host checks again (its own flags are the truth).
		if !lifecycle.BridgeOffered(&restorev1.Host{Bridges: p.bridges}, r.Network.Bridge, r.Tenant) {
			return hypervisor.RestoreSpec{}, fmt.Errorf("bridge %q is not offered to tenant %s on host %s (hypervisor-agent --bridge)", r.Network.Bridge, r.Tenant, p.hostID)
		}
		spec.Bridge = r.Network.Bridge
	case kinds.Isolated:
		spec.Lab = lifecycle.Lab(r)
	}
	spec.LinkDown = r.GetNetwork().GetLinkDown()
	for _, d := range rp.Disks {
		spec.Disks = append(spec.Disks, hypervisor.Disk{Name: d.Name, Size: d.VirtualSize, Chain: d.Chain})
	}
	return spec, nil
}

// firmwareOf is the firmware a restore boots with: the request's, else the
// recovery point's manifest's.
func (p *restores) firmwareOf(r *restorev1.Restore) kinds.Firmware {
	if f, ok := kinds.FirmwareFromAPI(r.Firmware); ok {
		return f
	}
	if rp, ok := p.catalog.lookup(r.RecoveryPointId); ok && rp.Manifest != nil && rp.Manifest.Firmware.Valid() {
		return rp.Manifest.Firmware
	}
	return kinds.BIOS
}

// finish waits for the boot signal and reports the outcome; a VERIFY
// restore goes on with its checks and is torn down by itself.
func (p *restores) finish(ctx context.Context, r *restorev1.Restore, begin time.Time, adopted bool) {
	w := p.boot.watch(ctx, r.Id, p.firmwareOf(r), begin, adopted)
	if ctx.Err() != nil {
		return // teardown was asked for while booting; no verdict
	}
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		p.finishVerify(ctx, r, begin, w)
		return
	}
	boot := w.boot
	if boot.Verified {
		p.metrics.ObserveBoot(time.Duration(boot.TimeToBootMs) * time.Millisecond)
	}
	reason := fmt.Sprintf("boot verified in %d ms (%v)", boot.TimeToBootMs, boot.Signals)
	switch {
	case w.bootError != "":
		reason = fmt.Sprintf("the boot failed: %s%s", w.bootError, p.ev.keepFailedBoot(ctx, r.Id, w))
	case !boot.Verified:
		reason = fmt.Sprintf("no boot signal within %s%s", p.boot.timeout, p.ev.keepFailedBoot(ctx, r.Id, w))
	}
	p.report(ctx, r.Id, lifecycle.Running, reason, boot)
}

// finishVerify ends a VERIFY run: RUNNING as soon as the boot is verified,
// then the checks, the verdict with its evidence, the teardown, and the
// final state.
func (p *restores) finishVerify(ctx context.Context, r *restorev1.Restore, begin time.Time, w bootWatch) {
	if w.boot.Verified {
		p.metrics.ObserveBoot(time.Duration(w.boot.TimeToBootMs) * time.Millisecond)
		p.report(ctx, r.Id, lifecycle.Running,
			fmt.Sprintf("boot verified in %d ms (%v); running the checks", w.boot.TimeToBootMs, w.boot.Signals), w.boot)
	}
	v := p.verify.run(ctx, r, begin, w)
	if ctx.Err() != nil {
		return // torn down meanwhile: no verdict
	}
	// The verdict and its evidence first (the VM still runs), then the
	// teardown and the final state (which carries the verification again,
	// in case the first report was lost).
	if w.boot.Verified {
		p.reportVerdict(ctx, r.Id, lifecycle.Running, fmt.Sprintf("verdict %s; tearing down", shortVerdict(v.Verdict)), w.boot, v)
	}
	if err := p.teardown(ctx, r.Id); err != nil {
		// Reported all the same: once it is no longer wanted, what is left
		// is an orphan, which every pass tries to remove.
		p.log.Error("teardown after verification; the orphan pass retries it", "restore", r.Id, "err", err)
	}
	state, reason := lifecycle.Destroyed, ""
	switch {
	case v.Verdict == restorev1.Verdict_VERDICT_PASSED:
		reason = fmt.Sprintf("verification passed: boot verified in %d ms (%v); torn down", w.boot.TimeToBootMs, w.boot.Signals)
	case v.Verdict == restorev1.Verdict_VERDICT_FAILED:
		state, reason = lifecycle.Failed, "verification failed: "+v.Reason
	case !w.boot.Verified:
		state, reason = lifecycle.Failed, "verification inconclusive: "+v.Reason
	default:
		reason = "verification inconclusive: " + v.Reason + "; torn down"
	}
	p.crashes.end(r.Id)
	p.reportVerdict(ctx, r.Id, state, printable(reason, 1000), w.boot, v)
}
