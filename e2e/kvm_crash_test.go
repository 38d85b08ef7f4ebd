package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A RUNNING restore whose QEMU dies is noticed at once through libvirt's
// lifecycle events: FAILED with the reason within seconds, torn down, and
// not booted again.
func TestARestoreWhoseQEMUDiesIsFailedAtOnceNotBootedAgain(t *testing.T) {
	s := startKVMStack(t)
	id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "crash-1"})
	s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
	pidFile := "/run/libvirt/qemu/restored-" + id + ".pid"
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the restore's QEMU pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s: %q", pidFile, b)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill QEMU %d: %v", pid, err)
	}
	x := s.waitState(id, "RESTORE_STATE_FAILED", 30*time.Second, nil)
	noticed := time.Since(killed)
	if reason, _ := x["state_reason"].(string); !strings.Contains(reason, "stopped unexpectedly") || !strings.Contains(reason, "QEMU") {
		t.Fatalf("FAILED with reason %q, want the VM's unexpected stop", reason)
	}
	t.Logf("QEMU killed: FAILED %s later: %s", noticed.Round(10*time.Millisecond), x["state_reason"])
	s.assertGone(id)
	// Not booted again: it stays FAILED with its domain gone through more
	// than one reconcile pass.
	time.Sleep(12 * time.Second) // past a reconcile pass (10 s)
	if _, x := s.rest("GET", "/v1/restores/"+id, s.acme, nil); x["state"] != "RESTORE_STATE_FAILED" {
		t.Fatalf("after the crash: %v", x["state"])
	}
	s.assertGone(id)
}
