package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testguest"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

const granularity = testguest.Block // the dirty bitmaps' granularity (qcow2 cluster)

// startGuest runs a protected guest (test image on vda, a blank 64 MiB vdb)
// and removes it, with any backup job of the stack's agent, at the end.
func (s *kvmStack) startGuest() *testguest.Guest {
	s.t.Helper()
	img, err := testimage.Path("..")
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g, err := testguest.Start(ctx, s.drv, img, s.work, 64<<20)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = s.drv.EndBackup(cctx, s.host, g.Name)
		if err := g.Close(cctx); err != nil {
			s.t.Errorf("cleanup of guest %s: %v", g.Name, err)
		}
	})
	return g
}

// writePattern and readPattern write random 64 KiB blocks to vdb and read
// their md5 back, through the guest agent.
func (s *kvmStack) writePattern(g *testguest.Guest, seek, count int) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := g.Write(ctx, seek, count)
	if err != nil {
		s.t.Fatal(err)
	}
	return sum
}

func (s *kvmStack) readPattern(domain string, seek, count int) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := testguest.Read(ctx, s.drv, domain, seek, count)
	if err != nil {
		s.t.Fatal(err)
	}
	return sum
}

// backupRun runs restorectl backup run as a process and returns its
// JSON summary.
func (s *kvmStack) backupRun(ctl, token, guestID string, args ...string) backupjob.Summary {
	s.t.Helper()
	sum, printed, err := s.cluster.BackupRun(ctl, s.srv, token, guestID, s.repo, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("backup run %v:\n%s", args, printed)
	return sum
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
	// A backup token may not register the guest: only an operator assigns
	// a domain its host reports.
	if code, _ := s.rest("POST", "/v1/guests", backup, map[string]any{"hypervisor": "KVM", "host_id": s.host, "name": g.Name}); code != 403 {
		t.Fatalf("a backup token registered a guest: HTTP %d", code)
	}
	gid := s.assignGuest(g.Name)

	// 1. FULL, quiesced through the guest agent.
	sum1 := s.writePattern(g, 16, 64) // 4 MiB at 1 MiB
	full := s.backupRun(ctl, backup, gid, "--quiesce")
	if full.Kind != "FULL" || full.Consistency != "QUIESCED" || full.RecoveryPointID == "" || full.BytesRead == 0 {
		t.Fatalf("first backup: %+v", full)
	}
	t.Logf("the guest's file systems were frozen for %d ms", full.FrozenMs)

	// 2. The guest changes 8 MiB; the INCREMENTAL reads that and little more.
	sum2 := s.writePattern(g, 512, 128) // 8 MiB at 32 MiB
	inc := s.backupRun(ctl, backup, gid, "--incremental")
	if inc.Kind != "INCREMENTAL" || inc.Backing != full.RecoveryPointID {
		t.Fatalf("second backup: %+v", inc)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	changed, err := testguest.ChangedBlocks(cctx, full.Dir, inc.Dir, "vda", "vdb")
	ccancel()
	if err != nil {
		t.Fatal(err)
	}
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
	cmd := exec.Command(ctl, "--addr", s.srv.GRPC, "--ca-cert", s.ca, "--token", backup, "backup", "run", "--guest", gid,
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
	killedCreds, _ := s.snapshotCreds(backup, killed["id"].(string))
	if c, err := dialExport(disk["nbd_uri"].(string), killedCreds); err != nil {
		t.Fatalf("the killed job's export with its credentials: %v", err)
	} else {
		c.Close()
	}
	var released map[string]any
	eventually(t, time.Minute, "the lease releases the snapshot", func() bool {
		_, released = s.rest("GET", "/v1/snapshots/"+killed["id"].(string), backup, nil)
		return released["state"] == "SNAPSHOT_STATE_RELEASED"
	})
	if !strings.Contains(released["state_reason"].(string), "lease ran out") {
		t.Fatalf("released because %q", released["state_reason"])
	}
	if c, err := dialExport(disk["nbd_uri"].(string), killedCreds); err == nil {
		c.Close()
		t.Fatal("the export still answers after the lease ran out")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cps, err := s.drv.Checkpoints(ctx, g.Name)
	if err != nil || len(cps) != 1 || cps[0] != baseCheckpoint {
		t.Fatalf("checkpoints after the lease: %v %v, want only the base %s", cps, err, baseCheckpoint)
	}

	// 5. The base checkpoint deleted behind Restored's back: the next
	// incremental is a FULL that says why (and the killed job's leftovers go).
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "checkpoint-delete", g.Name, baseCheckpoint).CombinedOutput(); err != nil {
		t.Fatalf("virsh checkpoint-delete: %v %s", err, out)
	}
	again := s.backupRun(ctl, backup, gid, "--incremental")
	if again.Kind != "FULL" || !strings.Contains(again.KindReason, "is gone") {
		t.Fatalf("after the chain broke: %s (%s)", again.Kind, again.KindReason)
	}
	if partial, _ := filepath.Glob(filepath.Join(s.repo, "acme", g.Name, ".partial-*")); len(partial) != 0 {
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
	// Its exports, over TLS only, to its own certificate only.
	s.checkExportsTakeOnlyTLSWithTheSnapshotsCertificate(t, backup, snap, killedCreds)
	s.killAgent()
	s.startAgent()
	eventually(t, time.Minute, "the restarted agent fails the snapshot", func() bool {
		_, snap = s.rest("GET", "/v1/snapshots/"+sid, backup, nil)
		return snap["state"] == "SNAPSHOT_STATE_FAILED"
	})
	if !strings.Contains(snap["state_reason"].(string), "restarted") {
		t.Fatalf("failed because %q", snap["state_reason"])
	}
	if cps, err := s.drv.Checkpoints(ctx, g.Name); err != nil || len(cps) != 1 || cps[0] != "restored-"+again.SnapshotID {
		t.Fatalf("checkpoints after the agent restart: %v %v", cps, err)
	}
}
