package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/netiso"
)

// The product's main job, end to end on real parts: restored and the
// hypervisor agent as separate processes, real libvirtd and QEMU (TCG here),
// the test image as a recovery point of tenant acme.
func TestRestoreBootsARecoveryPointUnderLibvirtEndToEnd(t *testing.T) {
	s := startKVMStack(t)
	before := fileFacts(t, s.disk)
	_, host := s.rest("GET", "/v1/hosts/"+s.host, s.admin, nil)
	t.Logf("host %s: accelerator=%v (%v)", s.host, host["accelerator"], host["accelerator_note"])

	t.Run("VIRTUALIZE boots, is verified, leaves the recovery point untouched, and DELETE leaves nothing", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "ttl_seconds": 3600, "request_id": "virt-1"})
		got := s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		boot := got["boot"].(map[string]any)
		t.Logf("RUNNING on %v: time_to_boot_ms=%v signals=%v", got["host_id"], boot["time_to_boot_ms"], boot["signals"])
		if code, _ := s.rest("GET", "/v1/restores/"+id, s.globex, nil); code != 404 {
			t.Fatalf("globex sees acme's restore: HTTP %d", code)
		}
		// The live screen, through the host's tunnel, as a PNG.
		code, ctype, shot := s.image("/v1/restores/"+id+"/screenshot", s.acme)
		if code != 200 || ctype != "image/png" {
			t.Fatalf("live screenshot: HTTP %d %s %.200s", code, ctype, shot)
		}
		if img, err := png.Decode(bytes.NewReader(shot)); err != nil || img.Bounds().Dx() != 640 {
			t.Fatalf("live screenshot: %v", err)
		}
		if code, _, _ := s.image("/v1/restores/"+id+"/screenshot", s.globex); code != 404 {
			t.Fatalf("globex got acme's screen: HTTP %d", code)
		}
		uid, gid := checkConfined(t, s, id)
		if after := fileFacts(t, s.disk); after != before {
			t.Fatalf("the recovery point changed:\n before %s\n after  %s", before, after)
		}
		if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
			t.Fatalf("delete: HTTP %d %v", code, body)
		}
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		s.assertGone(id)
		if opensAs(uid, gid, s.disk) {
			t.Fatal("the restore's uid still reads its recovery point after the teardown")
		}
	})

	t.Run("UEFI boots the same image through OVMF, and teardown removes its NVRAM", func(t *testing.T) {
		// syslinux.efi cannot place the kernel under OVMF in 128 MiB.
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "firmware": "UEFI", "memory_mib": 256, "request_id": "uefi-1"})
		got := s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		t.Logf("UEFI boot verified in %v ms", got["boot"].(map[string]any)["time_to_boot_ms"])
		if _, err := os.Stat(filepath.Join(s.work, "restores", id, "nvram.fd")); err != nil {
			t.Fatalf("the UEFI restore has no NVRAM of its own: %v", err)
		}
		serial, _ := os.ReadFile(filepath.Join(s.work, "restores", id, "serial.log"))
		if !strings.Contains(string(serial), "BdsDxe") {
			t.Fatalf("no sign of OVMF on the serial console:\n%s", serial)
		}
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		s.assertGone(id)
	})

	t.Run("ISOLATED gets its own bridge with no host address, removed at teardown", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128,
			"network": map[string]any{"kind": "ISOLATED"}, "request_id": "iso-1"})
		s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		br := netiso.BridgeName(id)
		addrs, err := netiso.Addresses(context.Background(), br)
		if err != nil || len(addrs) != 0 {
			t.Fatalf("bridge %s: addresses %v (%v)", br, addrs, err)
		}
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		s.assertGone(id)
		if netiso.Exists(context.Background(), br) {
			t.Fatalf("bridge %s left behind", br)
		}
	})

	t.Run("DELETE while BOOTING stops the boot at once", func(t *testing.T) {
		// An empty disk never boots: without cancellation the teardown would
		// wait for the whole boot timeout.
		s.blankRecoveryPoint("rp-blank")
		id := s.create(map[string]any{"recovery_point_id": "rp-blank", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "blank-1"})
		s.waitState(id, "RESTORE_STATE_BOOTING", 2*time.Minute, nil)
		start := time.Now()
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 30*time.Second, nil)
		s.assertGone(id)
		t.Logf("DELETE while BOOTING took %s", time.Since(start).Round(10*time.Millisecond))
	})

	t.Run("VERIFY reaches its verdict and cleans up by itself", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "memory_mib": 128, "request_id": "verify-1"})
		got := s.waitState(id, "RESTORE_STATE_DESTROYED", 4*time.Minute, verified)
		if !strings.Contains(got["state_reason"].(string), "verification passed") {
			t.Fatalf("reason %q", got["state_reason"])
		}
		s.assertGone(id)
	})

	t.Run("a recovery point whose qcow2 names /etc/shadow is invalid and cannot be restored", func(t *testing.T) {
		qcow2Pointing(t, filepath.Join(s.rpDir("rp-evil"), "disk0.qcow2"), "/etc/shadow", 1<<20)
		s.manifest("rp-evil", `[{"name":"disk0","file":"disk0.qcow2","format":"qcow2","virtual_size":1048576}]`)
		_ = s.agent.Process.Signal(syscall.SIGHUP) // "when asked": rescan now
		var rp map[string]any
		eventually(t, 30*time.Second, "rp-evil reported", func() bool {
			var code int
			code, rp = s.rest("GET", "/v1/recovery-points/rp-evil", s.acme, nil)
			return code == 200
		})
		if rp["valid"] != false || !strings.Contains(rp["invalid_reason"].(string), "/etc/shadow") {
			t.Fatalf("rp-evil: valid=%v reason=%v", rp["valid"], rp["invalid_reason"])
		}
		code, body := s.rest("POST", "/v1/restores", s.acme, map[string]any{"recovery_point_id": "rp-evil", "mode": "VERIFY", "request_id": "evil-1"})
		if code != 400 || !strings.Contains(body["message"].(string), "invalid") {
			t.Fatalf("restore of rp-evil: HTTP %d %v", code, body)
		}
	})

	t.Run("a short TTL expires and cleans up", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "ttl_seconds": 30, "request_id": "ttl-1"})
		s.waitState(id, "RESTORE_STATE_EXPIRED", 2*time.Minute, func(r map[string]any) bool { return r["destroy_time"] != nil })
		s.assertGone(id)
	})

	t.Run("kill -9 of the agent while BOOTING converges after a restart", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "ttl_seconds": 3600, "request_id": "kill-1"})
		s.waitState(id, "RESTORE_STATE_BOOTING", 2*time.Minute, nil)
		s.killAgent()
		s.startAgent()
		s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		s.assertGone(id)
	})

	t.Run("the agent reconnects when restored restarts, and restores keep working", func(t *testing.T) {
		s.srv.Kill()
		if err := s.srv.Start(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		eventually(t, time.Minute, "restored ready again", func() bool {
			resp, err := s.http.Get("https://" + s.srv.HTTP + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		eventually(t, time.Minute, "the host registers again with the restarted server", func() bool {
			code, h := s.rest("GET", "/v1/hosts/"+s.host, s.admin, nil)
			if code != 200 || h["state"] != "HOST_STATE_READY" {
				return false
			}
			seen, err := time.Parse(time.RFC3339Nano, fmt.Sprint(h["register_time"]))
			return err == nil && seen.After(restarted)
		})
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "memory_mib": 128, "request_id": "after-restart-1"})
		s.waitState(id, "RESTORE_STATE_DESTROYED", 4*time.Minute, verified)
		s.assertGone(id)
	})

	t.Run("the screen alone proves a boot: the guest left the firmware's text mode and settled", func(t *testing.T) {
		s.killAgent()
		s.startAgent("--boot-signals", "screen")
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "memory_mib": 128, "request_id": "screen-1"})
		got := s.waitState(id, "RESTORE_STATE_DESTROYED", 4*time.Minute, verified)
		boot := got["boot"].(map[string]any)
		if sig := boot["signals"].([]any); len(sig) != 1 || sig[0] != "screen" {
			t.Fatalf("signals %v, want [screen]", sig)
		}
		t.Logf("screen signal after %v ms", boot["time_to_boot_ms"])
		s.assertGone(id)
	})

	t.Run("a repository of 100,000 recovery points is reported in parts, and the agent keeps serving", func(t *testing.T) {
		s.killAgent()
		s.startAgent() // all boot signals again
		const n = 100_000
		start := time.Now()
		bulkRecoveryPoints(t, s.repo, n)
		t.Logf("wrote %d recovery points in %s", n, time.Since(start).Round(time.Millisecond))
		start = time.Now()
		_ = s.agent.Process.Signal(syscall.SIGHUP)
		eventually(t, 3*time.Minute, "the host to hold every recovery point", func() bool {
			_, host := s.rest("GET", "/v1/hosts/"+s.host, s.admin, nil)
			got, _ := host["recovery_points"].(float64)
			return got >= n+1 && host["state"] == "HOST_STATE_READY"
		})
		t.Logf("scanned and reported %d recovery points in %s", n+1, time.Since(start).Round(time.Millisecond))
		// Still serving: a restore boots, and the listing pages.
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "bulk-1"})
		s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		if code, page := s.rest("GET", "/v1/recovery-points?page_size=1000", s.acme, nil); code != 200 || len(page["recovery_points"].([]any)) != 1000 || page["next_page_token"] == "" {
			t.Fatalf("a page of recovery points: HTTP %d", code)
		}
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		// Gone from the disk, gone from the host at the next scan.
		if err := os.RemoveAll(filepath.Join(s.repo, "acme", "bulk")); err != nil {
			t.Fatal(err)
		}
		_ = s.agent.Process.Signal(syscall.SIGHUP)
		eventually(t, time.Minute, "the bulk recovery points withdrawn", func() bool {
			_, host := s.rest("GET", "/v1/hosts/"+s.host, s.admin, nil)
			got, _ := host["recovery_points"].(float64)
			return got < n
		})
	})

	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed over the whole run:\n before %s\n after  %s", before, after)
	}
}

// bulkRecoveryPoints writes n small valid recovery points of acme's asset
// "bulk" (a 512-byte raw disk each).
func bulkRecoveryPoints(t *testing.T, repo string, n int) {
	t.Helper()
	disk := make([]byte, 512)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rp-bulk-%06d", i)
		dir := filepath.Join(repo, "acme", "bulk", id)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		m := fmt.Sprintf(`{"id":%q,"tenant":"acme","asset":"bulk","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux","disks":[{"name":"d","file":"d.raw","format":"raw","virtual_size":512}]}`, id)
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "d.raw"), disk, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
