package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// sh runs a shell command in a domain's guest through its guest agent.
func (s *kvmStack) sh(domain, script string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.drv.GuestExec(ctx, domain, "/bin/sh", "-c", script)
	if err != nil || res.ExitCode != 0 {
		s.t.Fatalf("%q in %s: %v exit %d %s", script, domain, err, res.ExitCode, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// readRootFile reads a file of the test image's root filesystem (its
// second partition, ext4) from a qcow2 disk with debugfs: user space, no
// mount.
func readRootFile(t *testing.T, qcow2, path string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v %s", err, out)
	}
	out, err := exec.Command("sfdisk", "-J", raw).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pt struct {
		PartitionTable struct {
			Partitions []struct{ Start int64 } `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil || len(pt.PartitionTable.Partitions) < 2 {
		t.Fatalf("the partition table: %v %s", err, out)
	}
	off := pt.PartitionTable.Partitions[1].Start * 512
	b, err := exec.Command("debugfs", "-R", "cat "+path, fmt.Sprintf("%s?offset=%d", raw, off)).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

// A RUNNING restore is promoted live: its disks are copied into a libvirt
// storage pool while the guest runs, QEMU switches to the copies and then
// holds no file of the recovery point or the overlay; the domain is
// handed over (no Restored metadata, never torn down by Restored) and the
// guest's writes from before and after the switch are on the new disk. A
// partner may not promote; a pool the host lacks leaves the restore
// RUNNING with the reason.
func TestPromotionCopiesARunningRestoreToProductionStorageLive(t *testing.T) {
	s := startKVMStack(t)
	before := fileFacts(t, s.disk)
	pool := "restored-e2e-" + s.host
	dir := testimage.DirForQEMU(t, "restored-pool-")
	virsh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("virsh %v: %v %s", args, err, out)
		}
	}
	virsh("pool-define-as", pool, "dir", "--target", dir)
	t.Cleanup(func() {
		_ = exec.Command("virsh", "-c", "qemu:///system", "pool-destroy", pool).Run()
		_ = exec.Command("virsh", "-c", "qemu:///system", "pool-undefine", pool).Run()
	})
	virsh("pool-start", pool)

	id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 256, "request_id": "promote-1"})
	s.waitState(id, "RESTORE_STATE_RUNNING", 3*time.Minute, verified)
	name := vmspec.DomainName(id)
	s.sh(name, "echo written-before-the-pivot > /before && sync")

	if code, _ := s.rest("POST", "/v1/restores/"+id+":promote", s.acme, map[string]any{"storage_pool": pool}); code != 403 {
		t.Fatalf("a partner promoted a restore: HTTP %d", code)
	}
	if code, body := s.rest("POST", "/v1/restores/"+id+":promote", s.admin, map[string]any{"storage_pool": "../etc"}); code != 400 {
		t.Fatalf("a pool named ../etc: HTTP %d %v", code, body)
	}
	if code, body := s.rest("POST", "/v1/restores/"+id+":cancelPromotion", s.admin, map[string]any{}); code != 400 {
		t.Fatalf("cancel without a promotion: HTTP %d %v", code, body)
	}
	// A pool the host does not have: the restore runs on, saying why.
	if code, body := s.rest("POST", "/v1/restores/"+id+":promote", s.admin, map[string]any{"storage_pool": "no-such-pool"}); code != 200 || body["state"] != "RESTORE_STATE_PROMOTING" {
		t.Fatalf("promote: HTTP %d %v", code, body)
	}
	failed := s.waitState(id, "RESTORE_STATE_RUNNING", time.Minute, func(r map[string]any) bool {
		return strings.Contains(fmt.Sprint(r["state_reason"]), "promotion failed")
	})
	t.Logf("RUNNING again: %s", failed["state_reason"])

	// A slow copy (the agent bounds it to 4 MiB/s), cancelled midway: the
	// copy is removed and the restore runs from its overlay as before.
	s.killAgent()
	s.startAgent("--promote-bandwidth-mib", "4")
	if code, body := s.rest("POST", "/v1/restores/"+id+":promote", s.admin, map[string]any{"storage_pool": pool}); code != 200 {
		t.Fatalf("promote: HTTP %d %v", code, body)
	}
	copying := s.waitState(id, "RESTORE_STATE_PROMOTING", time.Minute, func(r map[string]any) bool {
		p, _ := r["progress"].(map[string]any)
		return p != nil && int64Of(p["done_bytes"]) > 0
	})
	t.Logf("PROMOTING: %s", copying["state_reason"])
	if code, body := s.rest("POST", "/v1/restores/"+id+":cancelPromotion", s.admin, map[string]any{}); code != 200 || body["state"] != "RESTORE_STATE_RUNNING" {
		t.Fatalf("cancel: HTTP %d %v", code, body)
	}
	eventually(t, time.Minute, "the cancelled copy removed", func() bool {
		left, _ := filepath.Glob(filepath.Join(dir, "*.qcow2"))
		return len(left) == 0
	})
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "domblklist", name).CombinedOutput(); err != nil || !strings.Contains(string(out), s.work) {
		t.Fatalf("after the cancel the domain does not run from its overlay: %v\n%s", err, out)
	}
	s.killAgent()
	s.startAgent()

	start := time.Now()
	if code, body := s.rest("POST", "/v1/restores/"+id+":promote", s.admin, map[string]any{"storage_pool": pool}); code != 200 {
		t.Fatalf("promote: HTTP %d %v", code, body)
	}
	done := s.waitState(id, "RESTORE_STATE_PROMOTED", 3*time.Minute, nil)
	t.Logf("PROMOTED after %s: %s", time.Since(start).Round(time.Millisecond), done["state_reason"])
	promo := done["promotion"].(map[string]any)
	paths := promo["disk_paths"].([]any)
	if promo["domain"] != name || len(paths) != 1 || !strings.HasPrefix(paths[0].(string), dir) {
		t.Fatalf("the promotion: %v", promo)
	}
	s.sh(name, "echo written-after-the-pivot > /after && sync")

	// QEMU holds the copy and nothing of the backup or the overlay.
	out, err := exec.Command("virsh", "-c", "qemu:///system", "domblklist", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), paths[0].(string)) {
		t.Fatalf("domblklist: %v\n%s", err, out)
	}
	pidText, err := os.ReadFile("/run/libvirt/qemu/" + name + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	fds, _ := filepath.Glob("/proc/" + strings.TrimSpace(string(pidText)) + "/fd/*")
	held := 0
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, s.repo) || strings.HasPrefix(target, s.work) {
			t.Errorf("QEMU still holds %s", target)
		}
		if target == paths[0] {
			held++
		}
	}
	if held == 0 {
		t.Fatalf("QEMU holds no descriptor of %s", paths[0])
	}
	// Handed over: Restored leaves it running, its work dir is gone.
	time.Sleep(3 * time.Second)
	if state := domState(t, name); state != "running" {
		t.Fatalf("the promoted domain is %q", state)
	}
	if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
		t.Fatalf("the restore's work dir is left: %v", err)
	}
	if out, _ := exec.Command("virsh", "-c", "qemu:///system", "metadata", name, vmspec.MetadataNamespace).CombinedOutput(); strings.Contains(string(out), "restore") && !strings.Contains(string(out), "error") {
		t.Fatalf("the promoted domain still carries Restored's metadata:\n%s", out)
	}

	// Both writes are on the new disk (read after the domain stopped).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.drv.Destroy(ctx, name); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"/before": "written-before-the-pivot", "/after": "written-after-the-pivot"} {
		if got := readRootFile(t, paths[0].(string), file); got != want {
			t.Fatalf("%s on the promoted disk: %q, want %q", file, got, want)
		}
	}
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed:\n%s\n%s", before, after)
	}
}

// domState is a domain's state as virsh says it.
func domState(t *testing.T, name string) string {
	t.Helper()
	out, _ := exec.Command("virsh", "-c", "qemu:///system", "domstate", name).CombinedOutput()
	return strings.TrimSpace(string(out))
}
