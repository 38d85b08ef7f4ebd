package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/diskfree"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// A guest that writes past its restore's overlay growth limit, or into a
// work dir that is full, is paused, not the host: PAUSED with the reason
// within seconds, its QEMU holding it (memory and disks kept), not booted
// again by later passes, and deleted like any other restore.
func TestAGuestPastItsOverlayLimitOrOnAFullDiskIsPausedNotTheHost(t *testing.T) {
	s := startKVMStack(t)
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	// The test image and a blank 1 GiB data disk the guest can fill.
	blank := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(blank, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blank, 1<<30); err != nil {
		t.Fatal(err)
	}
	s.filesRecoveryPoint("grow-1", [][4]string{{"vda", img, "raw", ""}, {"vdb", blank, "raw", ""}})
	_ = s.agent.Process.Signal(syscall.SIGHUP) // rescan now
	eventually(t, 30*time.Second, "grow-1 reported valid", func() bool {
		code, rp := s.rest("GET", "/v1/recovery-points/grow-1", s.acme, nil)
		return code == 200 && rp["valid"] == true
	})
	// The overlay's limit.
	s.fillUntilPaused("limit", 64, "its overlay reached its growth limit", "of the 64 MiB allowed")
	// A full work dir: the restores' dir on a 48 MiB tmpfs of the test's
	// own, the limit far above it.
	restores := filepath.Join(s.work, "restores")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", restores).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v %s", restores, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", restores).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", restores, err, out)
		}
	})
	s.fillUntilPaused("full", 1024, "its host's work dir is full", "ENOSPC")
}

// fillUntilPaused boots a restore of grow-1 whose overlay may grow to limit
// MiB, has its guest write 400 MiB onto its data disk, and checks that it
// is PAUSED with a reason saying want, stays so, and is deleted cleanly.
func (s *kvmStack) fillUntilPaused(name string, limit int, want ...string) {
	t := s.t
	t.Helper()
	id := s.create(map[string]any{"recovery_point_id": "grow-1", "mode": "VIRTUALIZE", "memory_mib": 128, "overlay_limit_mib": limit, "request_id": "grow-" + name})
	s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
	// 400 MiB onto the data disk, through the guest agent; the guest is
	// paused long before it is done, so the command never answers.
	domain := vmspec.DomainName(id)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, _ = s.drv.GuestExec(ctx, domain, "/bin/sh", "-c", "dd if=/dev/zero of=/dev/vdb bs=1M count=400 conv=fsync")
	}()
	started := time.Now()
	x := s.waitState(id, "RESTORE_STATE_PAUSED", 2*time.Minute, nil)
	reason, _ := x["state_reason"].(string)
	for _, w := range want {
		if !strings.Contains(reason, w) {
			t.Fatalf("%s: PAUSED with reason %q, want %q in it", name, reason, w)
		}
	}
	state := func() string {
		out, err := exec.Command("virsh", "-c", "qemu:///system", "domstate", domain).CombinedOutput()
		if err != nil {
			t.Fatalf("virsh domstate %s: %v %s", domain, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if st := state(); st != "paused" {
		t.Fatalf("the domain is %q, want paused", st)
	}
	used, err := diskfree.DirBytes(filepath.Join(s.work, "restores", id))
	if err != nil {
		t.Fatal(err)
	}
	if used >= 400<<20 {
		t.Fatalf("the restore's files take %d MiB: the guest wrote all it wanted", used>>20)
	}
	t.Logf("%s: paused %s after the writes began, its files taking %d MiB (limit %d): %s", name, time.Since(started).Round(100*time.Millisecond), used>>20, limit, reason)

	// Later passes leave it so: not resumed, not booted again.
	time.Sleep(12 * time.Second) // past a reconcile pass (10 s)
	if _, x := s.rest("GET", "/v1/restores/"+id, s.acme, nil); x["state"] != "RESTORE_STATE_PAUSED" {
		t.Fatalf("after a pass: %v", x["state"])
	}
	if st := state(); st != "paused" {
		t.Fatalf("after a pass the domain is %q, want still paused", st)
	}
	if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
		t.Fatalf("delete: HTTP %d %v", code, body)
	}
	s.waitState(id, "RESTORE_STATE_DESTROYED", time.Minute, nil)
	s.assertGone(id)
}
