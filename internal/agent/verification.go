package agent

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/vmspec"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// serialTailBytes is how much of the serial console a verification keeps.
const serialTailBytes = 4 << 10

// verifier gathers one VERIFY run's evidence: screenshots kept in the
// evidence dir, guest facts, the result of each check, and the verdict.
type verifier struct {
	mu   sync.Mutex // guards v.Checks (the screen check runs alongside)
	a    *Agent
	r    *restorev1.Restore
	name string
	dir  string
	v    *restorev1.Verification
}

// finishVerify ends a VERIFY run: RUNNING as soon as the boot is verified,
// then the checks, the teardown, and the verdict with its evidence.
func (a *Agent) finishVerify(ctx context.Context, r *restorev1.Restore, begin time.Time, w bootWatch) {
	if w.boot.Verified {
		a.report(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING,
			fmt.Sprintf("boot verified in %d ms (%v); running the checks", w.boot.TimeToBootMs, w.boot.Signals), w.boot)
	}
	v := a.runVerification(ctx, r, begin, w)
	if ctx.Err() != nil {
		return // torn down meanwhile: no verdict
	}
	// The verdict and its evidence first (the VM still runs), then the
	// teardown and the final state (which carries the verification again,
	// in case the first report was lost).
	if w.boot.Verified {
		a.reportVerification(ctx, r.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING,
			fmt.Sprintf("verdict %s; tearing down", strings.TrimPrefix(v.Verdict.String(), "VERDICT_")), w.boot, v)
	}
	if err := a.teardown(ctx, r.Id); err != nil {
		a.log.Error("teardown after verification", "restore", r.Id, "err", err)
	}
	state, reason := restorev1.RestoreState_RESTORE_STATE_DESTROYED, ""
	switch {
	case v.Verdict == restorev1.Verdict_VERDICT_PASSED:
		reason = fmt.Sprintf("verification passed: boot verified in %d ms (%v); torn down", w.boot.TimeToBootMs, w.boot.Signals)
	case v.Verdict == restorev1.Verdict_VERDICT_FAILED:
		state, reason = restorev1.RestoreState_RESTORE_STATE_FAILED, "verification failed: "+v.Reason
	case !w.boot.Verified:
		state, reason = restorev1.RestoreState_RESTORE_STATE_FAILED, "verification inconclusive: "+v.Reason
	default:
		reason = "verification inconclusive: " + v.Reason + "; torn down"
	}
	a.reportVerification(ctx, r.Id, state, printable(reason, 1000), w.boot, v)
}

// runVerification runs the checks of a VERIFY restore after verify() and
// returns the verification with its verdict. The domain is still running.
func (a *Agent) runVerification(ctx context.Context, r *restorev1.Restore, begin time.Time, w bootWatch) *restorev1.Verification {
	vf := &verifier{a: a, r: r, name: vmspec.DomainName(r.Id), dir: a.evidenceDir(r.Id), v: &restorev1.Verification{
		Id: r.Id, StartTime: timestamppb.New(begin), Signals: w.boot.Signals, TimeToBootMs: w.boot.TimeToBootMs,
	}}
	_ = os.MkdirAll(vf.dir, 0o700)
	if w.firstLight != nil {
		vf.keepScreenshot("first-light", w.firstLight.raw, w.firstLight.at)
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
	gaWait := a.cfg.ScreenSettle
	if len(opts.GetFilesystems()) > 0 || len(opts.GetAppChecks()) > 0 {
		gaWait = time.Until(begin.Add(a.cfg.BootTimeout))
	}
	gaUp := vf.checkGuestAgent(ctx, w, booted, gaWait)
	vf.checkFilesystems(ctx, gaUp, opts.GetFilesystems())
	serial, _ := os.ReadFile(a.serialPath(r.Id))
	vf.checkSerial(opts.GetSerialMarker(), serial)
	for _, c := range opts.GetAppChecks() {
		vf.checkApp(ctx, gaUp, c)
	}
	<-screenDone
	vf.sortChecks()
	vf.screenshot(ctx, "end")
	serial, _ = os.ReadFile(a.serialPath(r.Id)) // the end, after the checks
	vf.v.SerialTail = serialTail(serial)
	vf.v.Verdict, vf.v.FailedCheck, vf.v.Reason = verdictOf(booted, vf.v.Checks)
	switch {
	case w.bootError != "":
		vf.v.Reason = fmt.Sprintf("the boot failed after %s; %s", time.Since(begin).Round(time.Second), vf.v.Reason)
	case !booted:
		vf.v.Reason = fmt.Sprintf("no boot signal within %s; %s", a.cfg.BootTimeout, vf.v.Reason)
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
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	img, raw, err := vf.a.drv.Screenshot(sctx, vf.name)
	if err != nil {
		vf.a.log.Warn("verification screenshot", "restore", vf.r.Id, "label", label, "err", err)
		return nil
	}
	vf.keepScreenshot(label, raw, time.Now())
	return toRGBA(img)
}

// keepScreenshot stores a screenshot as <n>.png in the evidence dir.
func (vf *verifier) keepScreenshot(label string, raw []byte, at time.Time) {
	img, err := kvm.DecodeScreen(raw)
	if err != nil {
		return
	}
	if raw, err = kvm.AsPNG(raw, img); err != nil {
		return
	}
	n := int32(len(vf.v.Screenshots) + 1)
	if err := os.WriteFile(filepath.Join(vf.dir, fmt.Sprintf("%d.png", n)), raw, 0o600); err != nil {
		vf.a.log.Warn("keep screenshot", "restore", vf.r.Id, "err", err)
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
	watch := w.screen
	settled := watch.fired
	var last *image.RGBA
	// After a boot signal, give the screen its settling period.
	deadline := time.Now().Add(vf.a.cfg.ScreenSettle + 10*time.Second)
	for booted && !settled && time.Now().Before(deadline) && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		img, _, err := vf.a.drv.Screenshot(sctx, vf.name)
		cancel()
		if err == nil {
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
		img, _, err := vf.a.drv.Screenshot(sctx, vf.name)
		cancel()
		if err != nil {
			vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "no screenshot: %v", err)
			return
		}
		last = toRGBA(img)
	}
	size := last.Bounds().Size()
	if size == biosScreen {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lines, err := vf.a.drv.TextScreen(tctx, vf.name)
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
			watch.firmware.X, watch.firmware.Y, size.X, size.Y, vf.a.cfg.ScreenSettle)
	case size == watch.firmware:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "the screen kept the firmware's %dx%d display mode; no error text seen", size.X, size.Y)
	default:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, start, "the screen (%dx%d) did not settle within %s", size.X, size.Y, vf.a.cfg.ScreenSettle+10*time.Second)
	}
}

// checkGuestAgent pings the guest agent and, when it answers, collects the
// guest's facts. It reports whether the agent answered.
func (vf *verifier) checkGuestAgent(ctx context.Context, w bootWatch, booted bool, wait time.Duration) bool {
	start := time.Now()
	deadline := start.Add(wait)
	var err error
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = vf.a.drv.GuestPing(pctx, vf.name)
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
	vf.v.Guest = guestFacts(ctx, vf.a.drv, vf.name)
	vf.add("guest-agent", restorev1.CheckResult_CHECK_RESULT_PASSED, start, "guest-ping answered; %s, host name %q",
		firstNonEmpty(vf.v.Guest.OsName+" "+vf.v.Guest.OsVersion, "OS unknown"), vf.v.Guest.Hostname)
	return true
}

func (vf *verifier) checkFilesystems(ctx context.Context, gaUp bool, want []string) {
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
