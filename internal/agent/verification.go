package agent

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// serialTailBytes is how much of the serial console a verification keeps.
const serialTailBytes = 4 << 10

// verifications is the part of the agent that runs a VERIFY restore's
// checks and gathers its evidence (screenshots kept in the evidence dir,
// guest facts, a result per check) into one verdict. It keeps no state
// between runs.
type verifications struct {
	obs         hypervisor.Observer
	caps        hypervisor.Set
	ev          *evidence
	settle      time.Duration
	bootTimeout time.Duration
	log         *slog.Logger
}

// verifier is one VERIFY run.
type verifier struct {
	mu sync.Mutex // guards v.Checks (the screen check runs alongside)
	p  *verifications
	id string
	v  *restorev1.Verification
}

// run runs the checks of a VERIFY restore after its boot watch and
// returns the verification with its verdict. The VM is still running.
func (p *verifications) run(ctx context.Context, r *restorev1.Restore, begin time.Time, w bootWatch) *restorev1.Verification {
	vf := &verifier{p: p, id: r.Id, v: &restorev1.Verification{
		Id: r.Id, StartTime: timestamppb.New(begin), Signals: w.boot.Signals, TimeToBootMs: w.boot.TimeToBootMs,
	}}
	_ = os.MkdirAll(p.ev.dir(r.Id), 0o700)
	if w.firstLight != nil {
		vf.keepScreenshot("first-light", w.firstLight.screen, w.firstLight.at)
	}
	booted := w.boot.Verified
	if booted {
		vf.screenshot(ctx, "boot-signal")
	}
	// The screen settles while the guest-agent, filesystem, serial and
	// application checks run: they do not touch the screen.
	screenDone := make(chan struct{})
	go func() {
		defer close(screenDone)
		vf.checkScreen(ctx, w, booted)
	}()
	opts := r.GetVerify()
	// Checks that need the guest agent wait for it until the boot deadline
	// (a screen signal can come before the agent starts); otherwise it gets
	// the settling period.
	gaWait := p.settle
	if len(opts.GetFilesystems()) > 0 || len(opts.GetAppChecks()) > 0 {
		gaWait = time.Until(begin.Add(p.bootTimeout))
	}
	gaUp := vf.checkGuestAgent(ctx, booted, gaWait)
	vf.checkFilesystems(gaUp, opts.GetFilesystems())
	serial, _ := p.obs.Serial(ctx, r.Id)
	vf.checkSerial(opts.GetSerialMarker(), serial)
	for _, c := range opts.GetAppChecks() {
		vf.checkApp(ctx, gaUp, c)
	}
	<-screenDone
	vf.sortChecks()
	vf.screenshot(ctx, "end")
	serial, _ = p.obs.Serial(ctx, r.Id) // the end, after the checks
	vf.v.SerialTail = serialTail(serial)
	vf.v.Verdict, vf.v.FailedCheck, vf.v.Reason = verdictOf(booted, vf.v.Checks)
	switch {
	case w.bootError != "":
		vf.v.Reason = fmt.Sprintf("the boot failed after %s; %s", time.Since(begin).Round(time.Second), vf.v.Reason)
	case !booted:
		vf.v.Reason = fmt.Sprintf("no boot signal within %s; %s", p.bootTimeout, vf.v.Reason)
	}
	vf.v.Reason = printable(vf.v.Reason, 2000)
	vf.v.EndTime = timestamppb.Now()
	return vf.v
}

func (vf *verifier) add(name string, res restorev1.CheckResult, since time.Time, format string, args ...any) {
	vf.mu.Lock()
	defer vf.mu.Unlock()
	vf.v.Checks = append(vf.v.Checks, &restorev1.Check{Name: name, Result: res, Detail: printable(fmt.Sprintf(format, args...), 2000),
		DurationMs: time.Since(since).Milliseconds()})
}

// sortChecks puts the checks in one order whatever finished first: screen,
// guest agent, filesystems, serial, then the application checks as asked.
func (vf *verifier) sortChecks() {
	rank := map[string]int{"screen": 0, "guest-agent": 1, "filesystems": 2, "serial": 3}
	r := func(c *restorev1.Check) int {
		if n, ok := rank[c.Name]; ok {
			return n
		}
		return 4
	}
	sort.SliceStable(vf.v.Checks, func(i, j int) bool { return r(vf.v.Checks[i]) < r(vf.v.Checks[j]) })
}

// screenshot takes a screenshot now and keeps it under label.
func (vf *verifier) screenshot(ctx context.Context, label string) *image.RGBA {
	if !vf.p.caps.Has(hypervisor.Screenshots) {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := vf.p.obs.Screenshot(sctx, vf.id)
	if err != nil {
		vf.p.log.Warn("verification screenshot", "restore", vf.id, "label", label, "err", err)
		return nil
	}
	vf.keepScreenshot(label, s, time.Now())
	return toRGBA(s.Image)
}

// keepScreenshot stores a screenshot as <n>.png in the evidence dir.
func (vf *verifier) keepScreenshot(label string, s hypervisor.Screen, at time.Time) {
	raw, err := s.PNG()
	if err != nil {
		return
	}
	img := s.Image
	n := int32(len(vf.v.Screenshots) + 1)
	if err := os.WriteFile(vf.p.ev.screenshot(vf.id, n), raw, 0o600); err != nil {
		vf.p.log.Warn("keep screenshot", "restore", vf.id, "err", err)
		return
	}
	vf.v.Screenshots = append(vf.v.Screenshots, &restorev1.Screenshot{N: n, Label: label,
		Width: int32(img.Bounds().Dx()), Height: int32(img.Bounds().Dy()), SizeBytes: int64(len(raw)), TakeTime: timestamppb.New(at)})
}

// checkScreen: not blank, no firmware/bootloader/kernel error or stop
// screen, left the firmware's display mode and settled.
func (vf *verifier) checkScreen(ctx context.Context, w bootWatch, booted bool) {
	start := time.Now()
	const name = "screen"
	if !vf.p.caps.Has(hypervisor.Screenshots) {
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_SKIPPED, start, "this hypervisor takes no screenshots")
		return
	}
	watch := w.screen
	settled := watch.fired
	var last *image.RGBA
	// After a boot signal, give the screen its settling period: a short
	// one when the guest agent or the serial marker proved the boot.
	settle := vf.p.settle
	if corroborated(w.boot.Signals) && corroboratedSettle < settle {
		settle = corroboratedSettle
		watch.shorten(int(settle / screenEvery))
	}
	deadline := time.Now().Add(settle + 10*time.Second)
	for booted && !settled && time.Now().Before(deadline) && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := vf.p.obs.Screenshot(sctx, vf.id)
		cancel()
		if err == nil {
			img := s.Image
			last = toRGBA(img)
			settled = watch.add(img)
			if last.Bounds().Size() == biosScreen {
				break // text mode: read it below rather than wait
			}
		}
		time.Sleep(screenEvery)
	}
	if last == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := vf.p.obs.Screenshot(sctx, vf.id)
		cancel()
		if err != nil {
			vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "no screenshot: %v", err)
			return
		}
		last = toRGBA(s.Image)
	}
	size := last.Bounds().Size()
	if size == biosScreen {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lines, err := vf.p.obs.TextScreen(tctx, vf.id)
		cancel()
		if err == nil {
			if what, line, bad := bootError(lines); bad {
				vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s: the text screen says %q", what, line)
				return
			}
		}
	}
	switch {
	case stopScreen(last):
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "a Windows stop screen (blue screen) is showing")
	case blank(last):
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "the screen is blank (%dx%d)", size.X, size.Y)
	case settled:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_PASSED, start, "the guest left the firmware's %dx%d screen for its own %dx%d and it settled for %s",
			watch.firmware.X, watch.firmware.Y, size.X, size.Y, settle)
	case size == watch.firmware:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "the screen kept the firmware's %dx%d display mode; no error text seen", size.X, size.Y)
	default:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "the screen (%dx%d) did not settle within %s", size.X, size.Y, settle+10*time.Second)
	}
}

// checkGuestAgent pings the guest agent and, when it answers, collects the
// guest's facts. It reports whether the agent answered.
func (vf *verifier) checkGuestAgent(ctx context.Context, booted bool, wait time.Duration) bool {
	start := time.Now()
	if !vf.p.caps.Has(hypervisor.GuestAgent) {
		vf.add("guest-agent", restorev1.CheckResult_CHECK_RESULT_SKIPPED, start, "this hypervisor has no guest agent channel")
		return false
	}
	deadline := start.Add(wait)
	var err error
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = vf.p.obs.GuestPing(pctx, vf.id)
		cancel()
		if err == nil || !booted || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		vf.add("guest-agent", restorev1.CheckResult_CHECK_RESULT_SKIPPED, start, "no guest agent answered guest-ping (%v)", err)
		return false
	}
	vf.v.Guest = guestFacts(ctx, vf.p.obs, vf.id)
	vf.add("guest-agent", restorev1.CheckResult_CHECK_RESULT_PASSED, start, "guest-ping answered; %s, host name %q",
		firstNonEmpty(vf.v.Guest.OsName+" "+vf.v.Guest.OsVersion, "OS unknown"), vf.v.Guest.Hostname)
	return true
}

func (vf *verifier) checkFilesystems(gaUp bool, want []string) {
	if len(want) == 0 {
		return
	}
	start := time.Now()
	if !gaUp {
		vf.add("filesystems", restorev1.CheckResult_CHECK_RESULT_FAILED, start, "no guest agent to ask whether %s are mounted", strings.Join(want, ", "))
		return
	}
	mounted := map[string]bool{}
	for _, fs := range vf.v.Guest.GetFilesystems() {
		mounted[fs.Mountpoint] = true
	}
	var missing []string
	for _, m := range want {
		if !mounted[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		vf.add("filesystems", restorev1.CheckResult_CHECK_RESULT_FAILED, start, "not mounted: %s (mounted: %s)", strings.Join(missing, ", "), strings.Join(keys(mounted), ", "))
		return
	}
	vf.add("filesystems", restorev1.CheckResult_CHECK_RESULT_PASSED, start, "mounted: %s", strings.Join(want, ", "))
}

// checkSerial fails on a boot error on the serial console (a kernel panic,
// an initramfs shell) and, when a marker is asked, checks that it matched.
func (vf *verifier) checkSerial(marker string, log []byte) {
	start := time.Now()
	if what, line, bad := bootError(strings.Split(serialTail(log), "\n")); bad {
		vf.add("serial", restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s: the serial console says %q", what, line)
		return
	}
	if marker == "" {
		return
	}
	re, err := regexp.Compile(marker)
	if err != nil { // validated by the server; an old server may not have
		vf.add("serial", restorev1.CheckResult_CHECK_RESULT_FAILED, start, "bad marker: %v", err)
		return
	}
	if loc := re.FindIndex(log); loc != nil {
		vf.add("serial", restorev1.CheckResult_CHECK_RESULT_PASSED, start, "the serial console matched %q: %q", marker, printable(string(log[loc[0]:loc[1]]), 200))
		return
	}
	vf.add("serial", restorev1.CheckResult_CHECK_RESULT_FAILED, start, "the serial console never matched %q", marker)
}

// serialTail is the end of a serial console log, as printable text.
func serialTail(log []byte) string {
	if len(log) > serialTailBytes {
		log = log[len(log)-serialTailBytes:]
	}
	return printable(string(log), serialTailBytes)
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

// printable keeps valid UTF-8 text without escape sequences or control
// characters (newlines and tabs stay), at most max bytes.
func printable(s string, max int) string {
	s = ansiEscape.ReplaceAllString(strings.ToValidUTF8(s, "?"), "")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[len(s)-max:], "")
	}
	return s
}

// firstNonEmpty returns the first of ss that is not blank, trimmed.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}
