package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// worldReadableDir makes a temporary directory QEMU (user libvirt-qemu) can
// traverse, removed when the test ends.
func worldReadableDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fileFacts(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("sha256=%x uid=%d gid=%d mode=%v", h.Sum(nil), st.Uid, st.Gid, fi.Mode())
}

// The product's main job, end to end on real parts: restored and the
// hypervisor agent as separate processes, real libvirtd and QEMU (TCG here),
// the test image imported as a recovery point of tenant acme. A partner of
// acme creates a restore over REST; it boots and is verified; the recovery
// point is untouched; globex gets 404; DELETE leaves no domain and no files.
func TestRestoreBootsARecoveryPointUnderLibvirtEndToEnd(t *testing.T) {
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	restoredBin, err := testcluster.BuildCommand("..", bins, "restored")
	if err != nil {
		t.Fatal(err)
	}
	agentBin, err := testcluster.BuildCommand("..", bins, "hypervisor-agent")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: restoredBin, Dir: t.TempDir(), N: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	srv := c.Procs[0]
	admin := restorev1.NewAdminServiceClient(srv.Conn())
	actx := testcluster.Ctx(ctx, c.Token)
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := admin.CreateTenant(actx, &restorev1.CreateTenantRequest{Id: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(tenant, role string) string {
		resp, err := admin.CreateToken(actx, &restorev1.CreateTokenRequest{Tenant: tenant, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Secret
	}
	acme, globex, agentToken := token("acme", "partner"), token("globex", "partner"), token("", "agent")

	// The repository: the test image as recovery point rp-1 of acme/web-01.
	repo := worldReadableDir(t, "restored-repo-")
	rpDir := filepath.Join(repo, "acme", "web-01", "rp-1")
	if err := os.MkdirAll(rpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(repo, "acme"), filepath.Join(repo, "acme", "web-01"), rpDir} {
		_ = os.Chmod(d, 0o755)
	}
	disk := filepath.Join(rpDir, "disk0.raw")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v %s", err, out)
	}
	if err := os.Chmod(disk, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(disk)
	manifest := fmt.Sprintf(`{"id":"rp-1","tenant":"acme","asset":"web-01","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux",
		"disks":[{"name":"disk0","file":"disk0.raw","format":"raw","virtual_size":%d}]}`, fi.Size())
	if err := os.WriteFile(filepath.Join(rpDir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	before := fileFacts(t, disk)

	work := worldReadableDir(t, "restored-work-")
	agentLog := filepath.Join(bins, "agent.log")
	logf, err := os.Create(agentLog)
	if err != nil {
		t.Fatal(err)
	}
	agentCmd := exec.Command(agentBin, "--server", srv.GRPC, "--host-id", "kvm-01", "--token", agentToken,
		"--repository", repo, "--work-dir", work, "--reserve-memory-mib", "0")
	agentCmd.Stdout, agentCmd.Stderr = logf, logf
	agentCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agentCmd.Process.Kill()
		_ = agentCmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(agentLog)
			t.Logf("---- agent log ----\n%s", b)
			b, _ = os.ReadFile(srv.LogPath)
			t.Logf("---- restored log ----\n%s", b)
		}
	})

	base := "http://" + srv.HTTP
	rest := func(method, path, tok string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	eventually(t, 60*time.Second, "the agent's host READY with rp-1 valid", func() bool {
		code, rp := rest("GET", "/v1/recovery-points/rp-1", acme, nil)
		return code == 200 && rp["valid"] == true
	})
	code, host := rest("GET", "/v1/hosts/kvm-01", c.Token, nil)
	t.Logf("host kvm-01: HTTP %d accelerator=%v (%v)", code, host["accelerator"], host["accelerator_note"])

	code, created := rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 1, "memory_mib": 128, "ttl_seconds": 3600, "request_id": "e2e-1",
	})
	if code != 200 {
		t.Fatalf("create restore: HTTP %d %v", code, created)
	}
	id := created["id"].(string)
	domain := vmspec.DomainName(id)
	drv := kvm.New(kvm.LocalDialer(kvm.DefaultSocket), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer drv.Close()
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = drv.Destroy(cctx, domain) // whatever happened above, no domain is left behind
	})

	var got map[string]any
	eventually(t, 4*time.Minute, "RUNNING with a verified boot", func() bool {
		_, got = rest("GET", "/v1/restores/"+id, acme, nil)
		if got["state"] == "RESTORE_STATE_FAILED" {
			t.Fatalf("restore failed: %v", got["state_reason"])
		}
		boot, _ := got["boot"].(map[string]any)
		return got["state"] == "RESTORE_STATE_RUNNING" && boot != nil && boot["verified"] == true
	})
	boot := got["boot"].(map[string]any)
	t.Logf("restore %s RUNNING on %v: time_to_boot_ms=%v signals=%v", id, got["host_id"], boot["time_to_boot_ms"], boot["signals"])

	if code, _ := rest("GET", "/v1/restores/"+id, globex, nil); code != 404 {
		t.Fatalf("globex sees acme's restore: HTTP %d", code)
	}
	if after := fileFacts(t, disk); after != before {
		t.Fatalf("the recovery point changed:\n before %s\n after  %s", before, after)
	}

	if code, body := rest("DELETE", "/v1/restores/"+id, acme, nil); code != 200 {
		t.Fatalf("delete: HTTP %d %v", code, body)
	}
	eventually(t, 2*time.Minute, "DESTROYED", func() bool {
		_, got = rest("GET", "/v1/restores/"+id, acme, nil)
		return got["state"] == "RESTORE_STATE_DESTROYED"
	})
	doms, err := drv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.Name == domain {
			t.Fatalf("domain %s still defined after DESTROYED", domain)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "restores", id)); !os.IsNotExist(err) {
		t.Fatalf("the restore's work dir is still there: %v", err)
	}
	if after := fileFacts(t, disk); after != before {
		t.Fatalf("the recovery point changed after teardown:\n before %s\n after  %s", before, after)
	}
}
