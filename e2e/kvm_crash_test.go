package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A RUNNING restore whose QEMU dies is noticed at once through libvirt's
// lifecycle events: FAILED with the reason within seconds, torn down, and
// not booted again. The agent's metrics show the restore and its boot
// on the way.
func TestARestoreWhoseQEMUDiesIsFailedAtOnceNotBootedAgain(t *testing.T) {
	s := startKVMStack(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	s.killAgent()
	s.startAgent("--metrics-addr", metricsAddr)
	id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "crash-1"})
	s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("the agent's metrics: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	eventually(t, 30*time.Second, "the agent's metrics count the RUNNING restore", func() bool {
		return metric(`restored_agent_restores{state="RESTORE_STATE_RUNNING"}`) == 1
	})
	for _, name := range []string{"restored_agent_boot_seconds_count", `restored_agent_libvirt_call_seconds_count{call="define"}`, "restored_agent_work_dir_free_bytes"} {
		if v := metric(name); v <= 0 {
			t.Fatalf("metric %s is %v", name, v)
		}
	}
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
