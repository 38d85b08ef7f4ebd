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
	"github.com/restored/restored/internal/kinds"
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
	a.finish(ctx, r, begin, false)
}

// finish waits for the boot signal and reports the outcome; a VERIFY
// restore is torn down by itself.
func (a *Agent) finish(ctx context.Context, r *restorev1.Restore, begin time.Time, adopted bool) {
	w := a.verify(ctx, r, begin, adopted)
	boot := w.boot
	if ctx.Err() != nil {
		return // teardown was asked for while booting; no verdict
	}
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		a.finishVerify(ctx, r, begin, w)
		return
	}
	reason := fmt.Sprintf("boot verified in %d ms (%v)", boot.TimeToBootMs, boot.Signals)
	switch {
	case w.bootError != "":
		reason = fmt.Sprintf("the boot failed: %s%s", w.bootError, a.keepEvidence(r.Id, w))
	case !boot.Verified:
		reason = fmt.Sprintf("no boot signal within %s%s", a.cfg.BootTimeout, a.keepEvidence(r.Id, w))
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
	firmware := a.firmwareOf(r)
	network, bridge := kinds.NetworkFromAPI(r.GetNetwork().GetKind()), ""
	switch network {
	case kinds.Bridged:
		bridge = r.Network.Bridge
	case kinds.Isolated:
		bridge = netiso.BridgeName(r.Id)
		if err := netiso.Ensure(ctx, bridge); err != nil {
			return fmt.Errorf("isolated network: %w", err)
		}
		rv.Add(func() { _ = netiso.Remove(context.WithoutCancel(ctx), bridge) })
	}
	pw := make([]byte, 6)
	_, _ = rand.Read(pw)
	dom, err := vmspec.Build(&vmspec.Context{Host: a.facts, In: vmspec.Input{
		RestoreID: r.Id, Tenant: r.Tenant, HostID: a.cfg.HostID, ExpireAt: r.ExpireTime.AsTime(), VCPUs: int(r.Vcpus), MemoryMiB: r.MemoryMib,
		Firmware: firmware, OS: rp.Manifest.OS, Disks: disks, Network: network, Bridge: bridge,
		SerialLog: a.serialPath(r.Id), VNCPassword: base64.RawURLEncoding.EncodeToString(pw),
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

// signal says whether a boot signal counts here (--boot-signals).
func (a *Agent) signal(name string) bool {
	for _, s := range a.cfg.BootSignals {
		if s == name {
			return true
		}
	}
	return false
}

// firmwareOf is the firmware a restore boots with: the request's, else the
// recovery point's manifest's.
func (a *Agent) firmwareOf(r *restorev1.Restore) kinds.Firmware {
	if f, ok := kinds.FirmwareFromAPI(r.Firmware); ok {
		return f
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if rp, ok := a.rps[r.RecoveryPointId]; ok && rp.Manifest.Firmware.Valid() {
		return rp.Manifest.Firmware
	}
	return kinds.BIOS
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

// The boot signals.
const (
	signalSerial     = "serial"
	signalGuestAgent = "guest-agent"
	signalScreen     = "screen"
)

// screenEvery is the screenshot cadence while waiting for a boot signal (a
// screenshot costs QEMU about 20 ms of CPU); screenEveryFirmware the cadence
// until the firmware's screen was seen, which may show for only a second.
const (
	screenEvery         = time.Second
	screenEveryFirmware = 200 * time.Millisecond
	// textSettle is how many unchanged pictures of a text screen are read
	// for a boot error: an error screen is final, no need to wait longer.
	textSettle = 3
)

// bootWatch is what verify saw: the boot section, the screen watch, the
// first picture the guest drew and the last screenshot.
type bootWatch struct {
	boot       *restorev1.Boot
	screen     *screenWatch
	firstLight *shot
	lastScreen []byte
	screenSize string
	// bootError says why the boot cannot succeed, when the screen said so
	// before the boot timeout.
	bootError string
}

// shot is one encoded screenshot and when it was taken.
type shot struct {
	raw []byte
	at  time.Time
}

// verify waits for a boot signal: the serial console matching the marker,
// the guest agent answering guest-ping, or the screen (see screenWatch).
// adopted says the boot began before this agent watched it.
func (a *Agent) verify(ctx context.Context, r *restorev1.Restore, begin time.Time, adopted bool) bootWatch {
	id, name := r.Id, vmspec.DomainName(r.Id)
	serial := a.serialPath(id)
	deadline := time.Now().Add(a.cfg.BootTimeout)
	screen := newScreenWatch(a.firmwareOf(r), int(a.cfg.ScreenSettle/screenEvery), adopted)
	w := bootWatch{boot: &restorev1.Boot{}, screen: screen}
	nextShot := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if a.signal(signalSerial) {
			if b, err := os.ReadFile(serial); err == nil && a.marker.Match(b) {
				w.boot.Signals = append(w.boot.Signals, signalSerial)
			}
		}
		if a.signal(signalGuestAgent) {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if a.drv.GuestPing(pctx, name) == nil {
				w.boot.Signals = append(w.boot.Signals, signalGuestAgent)
			}
			cancel()
		}
		// Screenshots are taken even when the screen does not count: the
		// last one is a failed boot's evidence.
		if time.Now().After(nextShot) {
			nextShot = time.Now().Add(screenEvery)
			if !screen.armed {
				nextShot = time.Now().Add(screenEveryFirmware)
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			img, raw, err := a.drv.Screenshot(sctx, name)
			cancel()
			if err == nil {
				w.lastScreen, w.screenSize = raw, fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy())
				if w.firstLight == nil && img.Bounds().Size() != qemuPlaceholder {
					w.firstLight = &shot{raw: raw, at: time.Now()}
				}
				if screen.add(img) && a.signal(signalScreen) {
					w.boot.Signals = append(w.boot.Signals, signalScreen)
				}
				// A text screen that stays put may be the firmware or a
				// bootloader giving up: read it, and stop waiting if so.
				if img.Bounds().Size() == biosScreen && screen.same >= textSettle && len(w.boot.Signals) == 0 {
					tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					lines, err := a.drv.TextScreen(tctx, name)
					cancel()
					if what, line, bad := bootError(lines); err == nil && bad {
						w.bootError = fmt.Sprintf("%s: the text screen says %q", what, line)
						return w
					}
				}
			} else if ctx.Err() == nil {
				a.log.Debug("screenshot during boot", "restore", id, "err", err)
			}
		}
		if len(w.boot.Signals) > 0 {
			w.boot.Verified = true
			w.boot.TimeToBootMs = time.Since(begin).Milliseconds()
			return w
		}
		time.Sleep(min(250*time.Millisecond, time.Until(nextShot)))
	}
	return w
}
