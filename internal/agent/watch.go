package agent

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
)

// The boot signals.
const (
	signalSerial     = "serial"
	signalGuestAgent = "guest-agent"
	signalScreen     = "screen"
	// signalHypervisor: the hypervisor says the VM runs and its guest tools
	// answer (VMware Tools), or runs without tools (power state only). A
	// host whose driver reports no VM state (KVM) never gives it.
	signalHypervisor = "hypervisor"
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
	// corroboratedSettle is how long the screen must stay put in a
	// verification whose boot the guest agent or the serial marker proved
	// already (the operating system runs): enough to see a crash screen
	// or a firmware error come back, not the long settle that the screen
	// alone needs (--screen-settle).
	corroboratedSettle = 3 * time.Second
)

// corroborated says whether a boot was proved by more than the screen.
func corroborated(signals []string) bool {
	for _, s := range signals {
		if s == signalGuestAgent || s == signalSerial {
			return true
		}
	}
	return false
}

// bootWatcher waits for a restore's boot signal.
type bootWatcher struct {
	obs     hypervisor.Observer
	caps    hypervisor.Set
	timeout time.Duration
	// settle is how long the screen must stay put for the screen signal.
	settle  time.Duration
	marker  *regexp.Regexp
	signals []string
	log     *slog.Logger
}

// bootWatch is what watch saw: the boot section, the screen watch, the
// first picture the guest drew and the last screenshot.
type bootWatch struct {
	boot       *restorev1.Boot
	screen     *screenWatch
	firstLight *shot
	lastScreen hypervisor.Screen
	// bootError says why the boot cannot succeed, when the screen said so
	// before the boot timeout.
	bootError string
}

// shot is one screenshot and when it was taken.
type shot struct {
	screen hypervisor.Screen
	at     time.Time
}

// signal says whether a boot signal counts here (--boot-signals) and the
// hypervisor can give it.
func (b *bootWatcher) signal(name string) bool {
	switch {
	case name == signalGuestAgent && !b.caps.Has(hypervisor.GuestAgent), name == signalScreen && !b.caps.Has(hypervisor.Screenshots):
		return false
	}
	return slices.Contains(b.signals, name)
}

// watch waits for a boot signal: the serial console matching the marker,
// the guest agent answering guest-ping, or the screen (see screenWatch).
// adopted says the boot began before this agent watched it.
func (b *bootWatcher) watch(ctx context.Context, id string, firmware kinds.Firmware, begin time.Time, adopted bool) bootWatch {
	deadline := time.Now().Add(b.timeout)
	screen := newScreenWatch(firmware, int(b.settle/screenEvery), adopted)
	w := bootWatch{boot: &restorev1.Boot{}, screen: screen}
	nextShot := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b.signal(signalSerial) {
			if log, err := b.obs.Serial(ctx, id); err == nil && b.marker.Match(log) {
				w.boot.Signals = append(w.boot.Signals, signalSerial)
			}
		}
		if b.signal(signalGuestAgent) {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if b.obs.GuestPing(pctx, id) == nil {
				w.boot.Signals = append(w.boot.Signals, signalGuestAgent)
			}
			cancel()
		}
		if b.signal(signalHypervisor) {
			if got := b.vmState(ctx, id); got != "" {
				w.boot.Signals = append(w.boot.Signals, got)
			}
		}
		// Screenshots are taken even when the screen does not count: the
		// last one is a failed boot's evidence.
		if b.caps.Has(hypervisor.Screenshots) && time.Now().After(nextShot) {
			nextShot = time.Now().Add(screenEvery)
			if !screen.armed {
				nextShot = time.Now().Add(screenEveryFirmware)
			}
			if stop := b.look(ctx, id, &w); stop {
				return w
			}
		}
		if len(w.boot.Signals) > 0 {
			w.boot.Verified = true
			w.boot.TimeToBootMs = time.Since(begin).Milliseconds()
			return w
		}
		wait := 250 * time.Millisecond
		if b.caps.Has(hypervisor.Screenshots) {
			wait = min(wait, time.Until(nextShot))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return w
}

// look takes one screenshot into w; stop says the screen shows a boot
// that cannot succeed.
// vmState is the hypervisor's boot signal, if it gives one now:
// "vm-tools" when the VM runs with its guest tools answering,
// "vm-powered-on" when it runs and has no tools to ask.
func (b *bootWatcher) vmState(ctx context.Context, id string) string {
	vs, ok := b.obs.(hypervisor.VMStater)
	if !ok {
		return ""
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := vs.VMState(sctx, id)
	cancel()
	switch {
	case err != nil || !st.Running:
		return ""
	case st.Tools == hypervisor.ToolsRunning:
		return "vm-tools"
	case st.Tools == hypervisor.ToolsAbsent || st.Tools == hypervisor.ToolsUnknown:
		return "vm-powered-on"
	}
	return "" // tools installed, not running yet: still booting
}

func (b *bootWatcher) look(ctx context.Context, id string, w *bootWatch) (stop bool) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s, err := b.obs.Screenshot(sctx, id)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			b.log.Debug("screenshot during boot", "restore", id, "err", err)
		}
		return false
	}
	img := s.Image
	w.lastScreen = s
	if w.firstLight == nil && img.Bounds().Size() != qemuPlaceholder {
		w.firstLight = &shot{screen: s, at: time.Now()}
	}
	if w.screen.add(img) && b.signal(signalScreen) {
		w.boot.Signals = append(w.boot.Signals, signalScreen)
	}
	// A text screen that stays put may be the firmware or a bootloader
	// giving up: read it, and stop waiting if so.
	if img.Bounds().Size() == biosScreen && w.screen.same >= textSettle && len(w.boot.Signals) == 0 {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lines, err := b.obs.TextScreen(tctx, id)
		cancel()
		if what, line, bad := bootError(lines); err == nil && bad {
			w.bootError = fmt.Sprintf("%s: the text screen says %q", what, line)
			return true
		}
	}
	return false
}
