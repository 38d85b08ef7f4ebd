//go:build faults

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file runs only with -tags faults (make test runs it on its own,
// after every other package: restarting libvirtd under them would fail
// their calls in flight).

// restartLibvirtd stops the running libvirtd by the PID in its pid file
// and starts it again as scripts/start-libvirt.sh does, waiting until it
// answers; it returns how long libvirt was away.
func restartLibvirtd(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/run/libvirtd.pid")
	if err != nil {
		t.Fatalf("libvirtd's pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("libvirtd's pid file says %q", b)
	}
	if out, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err != nil || strings.TrimSpace(string(out)) != "libvirtd" {
		t.Fatalf("pid %d is not libvirtd (%q, %v)", pid, out, err)
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop libvirtd %d: %v", pid, err)
	}
	eventually(t, 30*time.Second, "libvirtd to exit", func() bool { return syscall.Kill(pid, 0) != nil })
	if out, err := exec.Command("libvirtd", "-d").CombinedOutput(); err != nil {
		t.Fatalf("start libvirtd: %v %s", err, out)
	}
	eventually(t, 30*time.Second, "libvirtd to answer", func() bool {
		return exec.Command("virsh", "-c", "qemu:///system", "version").Run() == nil
	})
	return time.Since(start)
}

// libvirtd restarting while a restore boots: the agent reconnects (its
// calls and its lifecycle event watch), the restore's QEMU keeps running
// (libvirtd does not own it), its boot is verified and it is RUNNING; a
// restore created while libvirtd was away converges too; nothing leaks.
func TestLibvirtdRestartingWhileARestoreBootsIsRiddenOut(t *testing.T) {
	s := startKVMStack(t)
	id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "lv-1"})
	s.waitState(id, "RESTORE_STATE_BOOTING", 3*time.Minute, nil)
	away := restartLibvirtd(t)
	t.Logf("libvirtd restarted while %s was BOOTING: away %s", id, away.Round(10*time.Millisecond))
	second := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "lv-2"})
	for _, x := range []string{id, second} {
		r := s.waitState(x, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		t.Logf("%s RUNNING after the restart: %v", x, r["state_reason"])
	}
	// The lifecycle watch came back: a guest whose QEMU dies now is still
	// noticed.
	b, err := os.ReadFile("/run/libvirt/qemu/restored-" + id + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	qemu, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(qemu, syscall.SIGKILL); err != nil {
		t.Fatalf("kill QEMU %d: %v", qemu, err)
	}
	if x := s.waitState(id, "RESTORE_STATE_FAILED", 30*time.Second, nil); !strings.Contains(x["state_reason"].(string), "stopped unexpectedly") {
		t.Fatalf("after its QEMU died: %v", x["state_reason"])
	}
	if code, body := s.rest("DELETE", "/v1/restores/"+second, s.acme, nil); code != 200 {
		t.Fatalf("delete: HTTP %d %v", code, body)
	}
	s.waitState(second, "RESTORE_STATE_DESTROYED", time.Minute, nil)
	s.assertGone(id)
	s.assertGone(second)
}
