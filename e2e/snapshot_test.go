package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// protectedGuest is a running guest outside Restored's restores: the test
// image on vda and a blank 64 MiB data disk on vdb, with its guest agent.
type protectedGuest struct {
	name string
}

const granularity = 64 << 10 // the dirty bitmaps' granularity (qcow2 cluster)

// startGuest defines and starts the guest under libvirt. Its metadata names
// another host, so the stack's agent never treats it as a restore.
func (s *kvmStack) startGuest() *protectedGuest {
	t := s.t
	t.Helper()
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := worldReadableDir(t, "restored-guest-")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	blank := filepath.Join(dir, "data.raw")
	if err := os.WriteFile(blank, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blank, 64<<20); err != nil {
		t.Fatal(err)
	}
	var disks []vmspec.DiskInput
	for i, base := range []string{img, blank} {
		overlay := filepath.Join(dir, fmt.Sprintf("disk%d.qcow2", i))
		if err := storage.CreateOverlay(ctx, overlay, base, storage.FormatRaw); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, vmspec.DiskInput{Name: fmt.Sprintf("disk%d", i), Overlay: overlay, Chain: []vmspec.ChainElement{{Path: base, Format: "raw"}}})
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	dom, err := vmspec.Build(&vmspec.Context{
		In: vmspec.Input{
			RestoreID: "guest-" + hex.EncodeToString(id[:]), Tenant: "acme", HostID: "e2e-protected-guest", ExpireAt: time.Now().Add(time.Hour),
			VCPUs: 1, MemoryMiB: 128, Firmware: "bios", OS: "linux", NetworkKind: vmspec.NetworkNone,
			SerialLog: filepath.Join(dir, "serial.log"), VNCPassword: "guest-pw", Disks: disks,
		},
		Host: vmspec.HostFacts{Accelerator: "tcg"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = s.drv.EndBackup(cctx, s.host, dom.Name)
		if err := s.drv.Destroy(cctx, dom.Name); err != nil {
			t.Errorf("cleanup of guest %s: %v", dom.Name, err)
		}
	})
	if err := s.drv.Start(ctx, dom); err != nil {
		t.Fatal(err)
	}
	g := &protectedGuest{name: dom.Name}
	eventually(t, 3*time.Minute, "the guest's agent answers", func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer pcancel()
		return s.drv.GuestPing(pctx, g.name) == nil
	})
	return g
}

// sh runs a shell command in a guest and returns its stdout.
func (s *kvmStack) sh(domain, script string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.drv.GuestExec(ctx, domain, "/bin/sh", "-c", script)
	if err != nil || res.ExitCode != 0 || res.Signal != 0 {
		s.t.Fatalf("guest %s: %q: %v exit %d %s", domain, script, err, res.ExitCode, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// writePattern writes count random 64 KiB blocks to /dev/vdb at block
// seek, straight to the disk, and returns their md5.
func (s *kvmStack) writePattern(domain string, seek, count int) string {
	return s.sh(domain, fmt.Sprintf("dd if=/dev/urandom of=/dev/vdb bs=65536 seek=%d count=%d conv=fsync 2>/dev/null && sync && "+
		"dd if=/dev/vdb bs=65536 skip=%d count=%d 2>/dev/null | md5sum", seek, count, seek, count))
}

func (s *kvmStack) readPattern(domain string, seek, count int) string {
	return s.sh(domain, fmt.Sprintf("dd if=/dev/vdb bs=65536 skip=%d count=%d 2>/dev/null | md5sum", seek, count))
}

// backupRun runs restorectl backup run as a process and returns its
// JSON summary.
func (s *kvmStack) backupRun(ctl, token, guestID string, args ...string) backupjob.Summary {
	s.t.Helper()
	cmd := exec.Command(ctl, append([]string{"--addr", s.srv.GRPC, "--token", token, "--output", "json",
		"backup", "run", "--guest", guestID, "--repository", s.repo}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("restorectl backup run %v: %v\n%s%s", args, err, out.String(), errOut.String())
	}
	var sum backupjob.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		s.t.Fatalf("summary: %v\n%s", err, out.String())
	}
	s.t.Logf("backup run %v:\n%s%s", args, errOut.String(), out.String())
	return sum
}

// changedBlocks counts the 64 KiB blocks that differ between two
// recovery points, per disk: what the guest really changed, measured
// without the dirty bitmap.
func changedBlocks(t *testing.T, a, b string, disks ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	tmp := t.TempDir()
	for _, d := range disks {
		var imgs [2][]byte
		for i, dir := range []string{a, b} {
			raw := filepath.Join(tmp, fmt.Sprintf("%s-%d.raw", d, i))
			if o, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(dir, d+".qcow2"), raw).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img convert: %v %s", err, o)
			}
			var err error
			if imgs[i], err = os.ReadFile(raw); err != nil {
				t.Fatal(err)
			}
		}
		if len(imgs[0]) != len(imgs[1]) {
			t.Fatalf("disk %s changed size: %d vs %d", d, len(imgs[0]), len(imgs[1]))
		}
		for off := 0; off < len(imgs[0]); off += granularity {
			end := min(off+granularity, len(imgs[0]))
			if !bytes.Equal(imgs[0][off:end], imgs[1][off:end]) {
				out[d]++
			}
		}
	}
	return out
}

// The backup loop on real QEMU: a FULL becomes a recovery point, an
// INCREMENTAL reads only what the guest changed and sits on it, the newest
// restores with the guest's data; a chain broken behind Restored's back
// gives a FULL with the reason; a job killed mid-read loses its snapshot to
// the lease; an agent restart fails the snapshot it served.
func TestBackupJobsCloseTheLoopFromSnapshotToRestore(t *testing.T) {
	s := startKVMStack(t)
	bins := t.TempDir()
	ctl, err := testcluster.BuildCommand("..", bins, "restorectl")
	if err != nil {
		t.Fatal(err)
	}
	code, tok := s.rest("POST", "/v1/tokens", s.admin, map[string]any{"tenant": "acme", "role": "backup"})
	if code != 200 {
		t.Fatalf("backup token: HTTP %d %v", code, tok)
	}
	backup := tok["secret"].(string)
	g := s.startGuest()
	code, guest := s.rest("POST", "/v1/guests", backup, map[string]any{"hypervisor": "KVM", "host_id": s.host, "name": g.name})
	if code != 200 {
		t.Fatalf("register guest: HTTP %d %v", code, guest)
	}
	gid := guest["id"].(string)

	// 1. FULL, quiesced through the guest agent.
	sum1 := s.writePattern(g.name, 16, 64) // 4 MiB at 1 MiB
	full := s.backupRun(ctl, backup, gid, "--quiesce")
	if full.Kind != "FULL" || full.Consistency != "QUIESCED" || full.RecoveryPointID == "" || full.BytesRead == 0 {
		t.Fatalf("first backup: %+v", full)
	}
	t.Logf("the guest's file systems were frozen for %d ms", full.FrozenMs)

	// 2. The guest changes 8 MiB; the INCREMENTAL reads that and little more.
	sum2 := s.writePattern(g.name, 512, 128) // 8 MiB at 32 MiB
	inc := s.backupRun(ctl, backup, gid, "--incremental")
	if inc.Kind != "INCREMENTAL" || inc.Backing != full.RecoveryPointID {
		t.Fatalf("second backup: %+v", inc)
	}
	changed := changedBlocks(t, full.Dir, inc.Dir, "vda", "vdb")
	if changed["vdb"] != 128 {
		t.Fatalf("the guest changed %d blocks of vdb, want 128", changed["vdb"])
	}
	changedBytes := int64(changed["vda"]+changed["vdb"]) * granularity
	ratio := float64(inc.BytesRead) / float64(changedBytes)
	t.Logf("incremental: read %d bytes for %d bytes the guest changed (vda %d, vdb %d blocks of 64 KiB): ratio %.3f",
		inc.BytesRead, changedBytes, changed["vda"], changed["vdb"], ratio)
	if inc.BytesRead < 8<<20 || ratio > 1.1 {
		t.Fatalf("incremental read %d bytes for %d changed (ratio %.3f, want <= 1.1)", inc.BytesRead, changedBytes, ratio)
	}
	_, gotGuest := s.rest("GET", "/v1/guests/"+gid, backup, nil)
	baseCheckpoint, _ := gotGuest["base_checkpoint_id"].(string)
	if !strings.HasPrefix(baseCheckpoint, "restored-") || gotGuest["base_snapshot_id"] != inc.SnapshotID {
		t.Fatalf("the guest's base after the incremental: %v", gotGuest)
	}

	// 3. The newest recovery point restores, and the guest's data is there.
	_ = s.agent.Process.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, inc.RecoveryPointID+" reported valid", func() bool {
		code, rp := s.rest("GET", "/v1/recovery-points/"+inc.RecoveryPointID, s.acme, nil)
		return code == 200 && rp["valid"] == true
	})
	id := s.create(map[string]any{"recovery_point_id": inc.RecoveryPointID, "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "restore-the-incremental"})
	s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
	eventually(t, time.Minute, "the restore's guest agent answers", func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer pcancel()
		return s.drv.GuestPing(pctx, vmspec.DomainName(id)) == nil
	})
	if got1, got2 := s.readPattern(vmspec.DomainName(id), 16, 64), s.readPattern(vmspec.DomainName(id), 512, 128); got1 != sum1 || got2 != sum2 {
		t.Fatalf("the restored guest's data: %q %q, want %q %q", got1, got2, sum1, sum2)
	}
	s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)

	// 4. A job killed mid-read: the lease releases the snapshot and leaves
	// nothing on the guest.
	cmd := exec.Command(ctl, "--addr", s.srv.GRPC, "--token", backup, "backup", "run", "--guest", gid,
		"--repository", s.repo, "--lease", "10", "--max-rate", fmt.Sprint(1<<20))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reading := make(chan struct{})
	go func() {
		r := bufio.NewReader(stderr)
		closed := false
		for {
			line, err := r.ReadString('\r')
			if strings.Contains(line, "[") && !closed {
				close(reading)
				closed = true
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-reading:
	case <-time.After(2 * time.Minute):
		t.Fatal("the backup job never started reading")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	_, list := s.rest("GET", "/v1/snapshots?guest_id="+gid, backup, nil)
	killed := list["snapshots"].([]any)[0].(map[string]any)
	if killed["state"] != "SNAPSHOT_STATE_READY" {
		t.Fatalf("the killed job's snapshot: %v", killed)
	}
	disk := killed["disks"].([]any)[0].(map[string]any)
	var released map[string]any
	eventually(t, time.Minute, "the lease releases the snapshot", func() bool {
		_, released = s.rest("GET", "/v1/snapshots/"+killed["id"].(string), backup, nil)
		return released["state"] == "SNAPSHOT_STATE_RELEASED"
	})
	if !strings.Contains(released["state_reason"].(string), "lease ran out") {
		t.Fatalf("released because %q", released["state_reason"])
	}
	target, _ := nbd.ParseURI(disk["nbd_uri"].(string))
	if c, err := nbd.Dial(context.Background(), target.Network, target.Address, nbd.Options{Export: target.Export}); err == nil {
		c.Close()
		t.Fatal("the export still answers after the lease ran out")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cps, err := s.drv.Checkpoints(ctx, g.name)
	if err != nil || len(cps) != 1 || cps[0] != baseCheckpoint {
		t.Fatalf("checkpoints after the lease: %v %v, want only the base %s", cps, err, baseCheckpoint)
	}

	// 5. The base checkpoint deleted behind Restored's back: the next
	// incremental is a FULL that says why (and the killed job's leftovers go).
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "checkpoint-delete", g.name, baseCheckpoint).CombinedOutput(); err != nil {
		t.Fatalf("virsh checkpoint-delete: %v %s", err, out)
	}
	again := s.backupRun(ctl, backup, gid, "--incremental")
	if again.Kind != "FULL" || !strings.Contains(again.KindReason, "is gone") {
		t.Fatalf("after the chain broke: %s (%s)", again.Kind, again.KindReason)
	}
	if partial, _ := filepath.Glob(filepath.Join(s.repo, "acme", g.name, ".partial-*")); len(partial) != 0 {
		t.Fatalf("left in the repository: %v", partial)
	}

	// 6. An agent restart fails the snapshot it served and ends its export.
	code, snap := s.rest("POST", "/v1/snapshots", backup, map[string]any{"guest_id": gid, "lease_seconds": 600})
	if code != 200 {
		t.Fatalf("create snapshot: HTTP %d %v", code, snap)
	}
	sid := snap["id"].(string)
	eventually(t, time.Minute, "snapshot READY", func() bool {
		_, snap = s.rest("GET", "/v1/snapshots/"+sid, backup, nil)
		return snap["state"] == "SNAPSHOT_STATE_READY"
	})
	// Its extents, paged, through the host's tunnel: a FULL lists the data.
	code, page := s.rest("GET", "/v1/snapshots/"+sid+"/disks/vdb/extents?page_size=1", backup, nil)
	if code != 200 || len(page["extents"].([]any)) != 1 || page["next_page_token"] == "" {
		t.Fatalf("extents page: HTTP %d %v", code, page)
	}
	if code, _ := s.rest("GET", "/v1/snapshots/"+sid+"/disks/vdb/extents", s.globex, nil); code != 404 {
		t.Fatalf("globex read acme's extents: HTTP %d", code)
	}
	s.killAgent()
	s.startAgent()
	eventually(t, time.Minute, "the restarted agent fails the snapshot", func() bool {
		_, snap = s.rest("GET", "/v1/snapshots/"+sid, backup, nil)
		return snap["state"] == "SNAPSHOT_STATE_FAILED"
	})
	if !strings.Contains(snap["state_reason"].(string), "restarted") {
		t.Fatalf("failed because %q", snap["state_reason"])
	}
	if cps, err := s.drv.Checkpoints(ctx, g.name); err != nil || len(cps) != 1 || cps[0] != "restored-"+again.SnapshotID {
		t.Fatalf("checkpoints after the agent restart: %v %v", cps, err)
	}
}
