package agent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/netiso"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/vmspec"
)

// start boots one restore: overlay, domain, boot verification. Any failure
// unwinds what was made and reports FAILED with the reason.
func (a *Agent) start(ctx context.Context, r *restorev1.Restore) {
	a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_PREPARING, "making the overlay", nil)
	begin := time.Now()
	if err := a.boot(ctx, r); err != nil {
		if ctx.Err() != nil {
			return // teardown was asked for meanwhile; it follows
		}
		a.log.Error("restore failed", "restore", r.Id, "err", err)
		a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_FAILED, err.Error(), nil)
		return
	}
	a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_BOOTING, "domain started; waiting for a boot signal", nil)
	a.finish(ctx, r, begin)
}

// finish waits for the boot signal and reports the outcome; a VERIFY
// restore is torn down by itself.
func (a *Agent) finish(ctx context.Context, r *restorev1.Restore, begin time.Time) {
	boot := a.verify(ctx, r.Id, begin)
	if ctx.Err() != nil {
		return // teardown was asked for while booting; no verdict
	}
	reason := fmt.Sprintf("boot verified in %d ms (%v)", boot.TimeToBootMs, boot.Signals)
	if !boot.Verified {
		reason = fmt.Sprintf("no boot signal within %s", a.cfg.BootTimeout)
	}
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		// A verification ends by itself: verdict, then teardown.
		if err := a.teardown(ctx, r.Id); err != nil {
			a.log.Error("teardown after verification", "restore", r.Id, "err", err)
		}
		if !boot.Verified {
			a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_FAILED, reason, boot)
			return
		}
		a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING, reason, boot)
		a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_DESTROYED, "verification passed: "+reason+"; torn down", boot)
		return
	}
	a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING, reason, boot)
}

// boot makes the overlays and starts the domain, unwinding on failure.
func (a *Agent) boot(ctx context.Context, r *restorev1.Restore) error {
	a.mu.Lock()
	rp, ok := a.rps[r.RecoveryPointId]
	a.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("recovery point %s is not in this host's repository", r.RecoveryPointId)
	case !rp.Valid:
		return fmt.Errorf("recovery point %s is invalid: %s", rp.ID, rp.Reason)
	case rp.Tenant != r.Tenant:
		return fmt.Errorf("recovery point %s does not belong to tenant %s", rp.ID, r.Tenant)
	}
	rv := revert.New()
	defer rv.Fail()
	dir := a.restoreDir(r.Id)
	// No domain exists for this restore (reconcile checked): anything in its
	// work dir is left from an interrupted attempt.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rv.Add(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	var disks []vmspec.DiskInput
	for _, d := range rp.Disks {
		overlay := filepath.Join(dir, d.Name+".qcow2")
		if err := storage.CreateOverlay(ctx, overlay, d.Path, d.Format); err != nil {
			return fmt.Errorf("overlay for disk %s: %w", d.Name, err)
		}
		chain := []vmspec.ChainElement{{Path: d.Path, Format: d.Format}}
		// Incremental recovery points: spell out the rest of the chain.
		for back := d; back.BackingPath != ""; {
			chain = append(chain, vmspec.ChainElement{Path: back.BackingPath, Format: back.BackingFormat})
			next, ok := a.backingDisk(back.BackingPath)
			if !ok {
				break
			}
			back = next
		}
		disks = append(disks, vmspec.DiskInput{Name: d.Name, Overlay: overlay, Chain: chain})
	}
	firmware := rp.Manifest.Firmware
	switch r.Firmware {
	case restorev1.Firmware_FIRMWARE_BIOS:
		firmware = "bios"
	case restorev1.Firmware_FIRMWARE_UEFI:
		firmware = "uefi"
	}
	network, bridge := vmspec.NetworkNone, ""
	switch r.GetNetwork().GetKind() {
	case restorev1.NetworkKind_NETWORK_KIND_BRIDGED:
		network, bridge = vmspec.NetworkBridged, r.Network.Bridge
	case restorev1.NetworkKind_NETWORK_KIND_ISOLATED:
		network, bridge = vmspec.NetworkIsolated, netiso.BridgeName(r.Id)
		if err := netiso.Ensure(ctx, bridge); err != nil {
			return fmt.Errorf("isolated network: %w", err)
		}
		rv.Add(func() { _ = netiso.Remove(context.WithoutCancel(ctx), bridge) })
	}
	pw := make([]byte, 6)
	_, _ = rand.Read(pw)
	dom, err := vmspec.Build(&vmspec.Context{Host: a.facts, In: vmspec.Input{
		RestoreID: r.Id, Tenant: r.Tenant, HostID: a.cfg.HostID, ExpireAt: r.ExpireTime.AsTime(), VCPUs: int(r.Vcpus), MemoryMiB: r.MemoryMib,
		Firmware: firmware, OS: rp.Manifest.OS, Disks: disks, NetworkKind: network, Bridge: bridge,
		SerialLog: filepath.Join(dir, "serial.log"), VNCPassword: base64.RawURLEncoding.EncodeToString(pw),
		NVRAM: filepath.Join(dir, "nvram.fd"),
	}})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := a.drv.Start(sctx, dom); err != nil {
		return err
	}
	rv.Success()
	return nil
}

// backingDisk finds the resolved disk whose file is path, to follow chains.
func (a *Agent) backingDisk(path string) (storage.ResolvedDisk, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, rp := range a.rps {
		for _, d := range rp.Disks {
			if d.Path == path {
				return d, true
			}
		}
	}
	return storage.ResolvedDisk{}, false
}

// verify waits for a boot signal: the serial console matching the marker,
// or the guest agent answering guest-ping.
//
// The screen signal (screenWatch, kvm.Driver.Screenshot) is not polled here
// yet: repeated screenshots of a domain that is still in its firmware wedged
// libvirt's domain job in CI (every later call on that domain timed out).
func (a *Agent) verify(ctx context.Context, id string, begin time.Time) *restorev1.Boot {
	serial := filepath.Join(a.restoreDir(id), "serial.log")
	deadline := time.Now().Add(a.cfg.BootTimeout)
	boot := &restorev1.Boot{}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b, err := os.ReadFile(serial); err == nil && a.marker.Match(b) {
			boot.Signals = append(boot.Signals, "serial")
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if a.drv.GuestPing(pctx, vmspec.DomainName(id)) == nil {
			boot.Signals = append(boot.Signals, "guest-agent")
		}
		cancel()
		if len(boot.Signals) > 0 {
			boot.Verified = true
			boot.TimeToBootMs = time.Since(begin).Milliseconds()
			return boot
		}
		time.Sleep(250 * time.Millisecond)
	}
	return boot
}
