package agent

import (
	"fmt"
	"image"
	"regexp"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// bootErrors are what firmware, bootloaders and kernels print when a boot
// fails, as read from a text screen or the serial console.
var bootErrors = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)no bootable device`), "the firmware found no bootable device"},
	{regexp.MustCompile(`(?i)boot failed`), "the firmware could not boot the disk"},
	{regexp.MustCompile(`(?i)no bootable medium found`), "the firmware found no bootable medium"},
	{regexp.MustCompile(`(?i)operating system not found|missing operating system`), "the boot sector found no operating system"},
	{regexp.MustCompile(`(?i)error loading operating system|invalid partition table`), "the boot sector could not load the operating system"},
	{regexp.MustCompile(`(?i)(bootmgr|ntldr) is missing`), "the Windows boot manager is missing"},
	{regexp.MustCompile(`(?i)grub rescue>`), "GRUB dropped to its rescue shell"},
	{regexp.MustCompile(`(?i)kernel panic`), "the kernel panicked"},
	{regexp.MustCompile(`(?i)\(initramfs\)|dropping to a shell`), "the initramfs dropped to its emergency shell"},
}

// bootError returns what went wrong and the line saying so, when any line
// shows a boot failure. The lowest such line wins: it is the last word.
func bootError(lines []string) (what, line string, found bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		for _, e := range bootErrors {
			if e.re.MatchString(l) {
				return e.what, strings.TrimSpace(l), true
			}
		}
	}
	return "", "", false
}

// stopScreen says whether a picture is a Windows stop screen: most of it is
// one of the stop screens' blues.
func stopScreen(img *image.RGBA) bool {
	blues := [][3]int{{0x00, 0x78, 0xd7}, {0x00, 0x00, 0x82}, {0x00, 0x00, 0xaa}, {0x10, 0x6e, 0xbe}}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w == 0 || h == 0 {
		return false
	}
	n, total := 0, 0
	for y := 0; y < h; y += 4 {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x += 4 {
			total++
			r, g, b := int(row[x*4]), int(row[x*4+1]), int(row[x*4+2])
			for _, c := range blues {
				if abs(r-c[0]) < 24 && abs(g-c[1]) < 24 && abs(b-c[2]) < 24 {
					n++
					break
				}
			}
		}
	}
	return n*10 > total*6
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// verdictOf gives one verdict from all the checks: FAILED when any check
// failed (the first one is named), PASSED when a boot signal fired and none
// failed, INCONCLUSIVE otherwise.
func verdictOf(booted bool, checks []*restorev1.Check) (restorev1.Verdict, string, string) {
	for _, c := range checks {
		if c.Result == restorev1.CheckResult_CHECK_RESULT_FAILED {
			return restorev1.Verdict_VERDICT_FAILED, c.Name, fmt.Sprintf("check %s failed: %s", c.Name, c.Detail)
		}
	}
	if booted {
		return restorev1.Verdict_VERDICT_PASSED, "", "the guest booted and every check passed"
	}
	var open []string
	for _, c := range checks {
		if c.Result == restorev1.CheckResult_CHECK_RESULT_INCONCLUSIVE {
			open = append(open, c.Name+": "+c.Detail)
		}
	}
	reason := "no boot signal and no failure seen"
	if len(open) > 0 {
		reason += " (" + strings.Join(open, "; ") + ")"
	}
	return restorev1.Verdict_VERDICT_INCONCLUSIVE, "", reason
}

// shortVerdict is a verdict without its enum prefix: PASSED.
func shortVerdict(v restorev1.Verdict) string { return strings.TrimPrefix(v.String(), "VERDICT_") }
