package agent

import (
	"image"
	"image/color"
	"strings"
	"testing"
	"unicode/utf8"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestBootErrorReadsTheLastWordOfTheScreen(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"SeaBIOS without a bootable disk", []string{"SeaBIOS (version 1.16.2)", "Booting from Hard Disk...", "Boot failed: not a bootable disk", "", "No bootable device."}, "No bootable device."},
		{"GRUB rescue", []string{"error: no such partition.", "Entering rescue mode...", "grub rescue> "}, "grub rescue>"},
		{"kernel panic", []string{"[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs"}, "[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs"},
		{"Windows boot manager", []string{"BOOTMGR is missing", "Press Ctrl+Alt+Del to restart"}, "BOOTMGR is missing"},
		{"a login prompt is no error", []string{"Debian GNU/Linux 12 web-01 tty1", "", "web-01 login:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, line, found := bootError(tt.lines)
			if found != (tt.want != "") || line != tt.want {
				t.Fatalf("bootError = %q, %v; want %q", line, found, tt.want)
			}
		})
	}
}

func TestStopScreenIsMostlyStopScreenBlue(t *testing.T) {
	fill := func(c color.RGBA) *image.RGBA {
		img := image.NewRGBA(image.Rect(0, 0, 64, 48))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
		}
		return img
	}
	if !stopScreen(fill(color.RGBA{0x00, 0x78, 0xd7, 255})) {
		t.Fatal("a Windows 10 stop screen was not recognised")
	}
	if stopScreen(fill(color.RGBA{0x20, 0x20, 0x20, 255})) || stopScreen(fill(color.RGBA{0, 0x40, 0, 255})) {
		t.Fatal("a dark desktop was taken for a stop screen")
	}
}

func TestVerdictComesFromAllTheChecks(t *testing.T) {
	c := func(name string, r restorev1.CheckResult) *restorev1.Check {
		return &restorev1.Check{Name: name, Result: r, Detail: name + " detail"}
	}
	pass, fail, inc, skip := restorev1.CheckResult_CHECK_RESULT_PASSED, restorev1.CheckResult_CHECK_RESULT_FAILED,
		restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE, restorev1.CheckResult_CHECK_RESULT_SKIPPED
	tests := []struct {
		name       string
		booted     bool
		checks     []*restorev1.Check
		want       restorev1.Verdict
		wantFailed string
	}{
		{"booted, every check passed", true, []*restorev1.Check{c("screen", pass), c("guest-agent", pass)}, restorev1.Verdict_VERDICT_PASSED, ""},
		{"booted, no guest agent: still a pass", true, []*restorev1.Check{c("screen", pass), c("guest-agent", skip)}, restorev1.Verdict_VERDICT_PASSED, ""},
		{"booted, an application check failed", true, []*restorev1.Check{c("screen", pass), c("app:db", fail)}, restorev1.Verdict_VERDICT_FAILED, "app:db"},
		{"the first failure is named", false, []*restorev1.Check{c("screen", fail), c("app:db", fail)}, restorev1.Verdict_VERDICT_FAILED, "screen"},
		{"no signal, no guest agent, a screen that never settled", false, []*restorev1.Check{c("screen", inc), c("guest-agent", skip)}, restorev1.Verdict_VERDICT_INCONCLUSIVE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed, reason := verdictOf(tt.booted, tt.checks)
			if got != tt.want || failed != tt.wantFailed || reason == "" {
				t.Fatalf("verdict %v %q %q; want %v %q", got, failed, reason, tt.want, tt.wantFailed)
			}
		})
	}
}

func TestLongReasonsAreClampedToWhatTheServerTakes(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := clampReason(long)
	if len(got) > maxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("clamped to %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
	}
	if clampReason("short") != "short" {
		t.Fatal("a short reason was changed")
	}
}
