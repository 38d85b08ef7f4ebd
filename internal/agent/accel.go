package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Accelerator decides how this host runs guests: "kvm" or "tcg", with a
// note saying why. forced is "kvm", "tcg" or "auto".
//
// The auto probe boots QEMU's own firmware (SeaBIOS) under KVM with no disk
// and checks that it reaches "No bootable device" and that QEMU did not warn
// that the host cannot provide the guest CPU's features. On a nested host
// where KVM exists but guests die ("KVM internal error"), the CPU-feature
// warning is what gives it away before any guest is lost.
func Accelerator(ctx context.Context, emulator, dir, forced string) (string, string) {
	switch forced {
	case "kvm":
		return "kvm", "forced by --accelerator kvm"
	case "tcg":
		return "tcg", "forced by --accelerator tcg: guests run under TCG (software emulation)"
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", "no /dev/kvm: guests run under TCG (software emulation), several times slower"
	}
	out := filepath.Join(dir, "kvm-probe.out")
	_ = os.Remove(out)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(pctx, emulator, "-accel", "kvm", "-machine", "q35", "-m", "32", "-nodefaults", "-display", "none",
		"-no-reboot", "-chardev", "file,id=dbg,path="+out, "-device", "isa-debugcon,iobase=0x402,chardev=dbg")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "tcg", fmt.Sprintf("KVM probe could not start %s (%v): guests run under TCG", emulator, err)
	}
	booted := false
	for pctx.Err() == nil && !booted {
		b, _ := os.ReadFile(out)
		booted = strings.Contains(string(b), "No bootable device")
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	warn := stderr.String()
	switch {
	case strings.Contains(warn, "doesn't support requested feature"):
		line := strings.SplitN(strings.TrimSpace(warn), "\n", 2)[0]
		if i := strings.Index(line, "warning: "); i >= 0 {
			line = line[i+len("warning: "):]
		}
		return "tcg", "/dev/kvm exists but the host cannot give KVM guests a full CPU (" + line +
			"; nested virtualization?): guests run under TCG"
	case !booted:
		return "tcg", "/dev/kvm exists but a KVM probe guest did not run within 10 s: guests run under TCG"
	}
	return "kvm", "a KVM probe guest ran with the full CPU model"
}
