package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// restored --dev is one process with an embedded agent on the local libvirt:
// a recovery point in its repository boots, is verified and is torn down.
func TestDevModeEmbedsAnAgent(t *testing.T) {
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	bin, err := testcluster.BuildCommand("..", bins, "restored")
	if err != nil {
		t.Fatal(err)
	}
	data := testimage.DirForQEMU(t, "restored-dev-test-")
	repo := filepath.Join(data, "repository")
	rp := filepath.Join(repo, "acme", "web-01", "rp-dev")
	if err := os.MkdirAll(rp, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "--sparse=always", img, filepath.Join(rp, "disk0.raw")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	fi, _ := os.Stat(filepath.Join(rp, "disk0.raw"))
	manifest := fmt.Sprintf(`{"id":"rp-dev","tenant":"acme","asset":"web-01","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux","disks":[{"name":"disk0","file":"disk0.raw","format":"raw","virtual_size":%d}]}`, fi.Size())
	if err := os.WriteFile(filepath.Join(rp, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = filepath.Walk(repo, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	addrs := make([]string, 3)
	for i := range addrs {
		var err error
		if addrs[i], err = testcluster.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(bins, "restored.log")
	logf, _ := os.Create(logPath)
	cmd := exec.Command(bin, "--dev", "--data-dir", filepath.Join(data, "server"), "--grpc-addr", addrs[0], "--http-addr", addrs[1],
		"--raft-addr", addrs[2], "--dev-repository", repo, "--dev-host-id", "dev-test-host")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("---- restored --dev log ----\n%s", b)
		}
	})
	var token string
	eventually(t, 30*time.Second, "the bootstrap token", func() bool {
		b, err := os.ReadFile(filepath.Join(data, "server", "bootstrap-token"))
		token = strings.TrimSpace(string(b))
		return err == nil && token != ""
	})
	rest := func(method, path string, body any) (int, map[string]any) {
		var buf bytes.Buffer
		if body != nil {
			_ = json.NewEncoder(&buf).Encode(body)
		}
		req, _ := http.NewRequest(method, "https://"+addrs[1]+path, &buf)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpsClient(t, filepath.Join(data, "server", "tls", "ca.pem")).Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	eventually(t, 60*time.Second, "the embedded agent to report rp-dev", func() bool {
		code, body := rest("GET", "/v1/recovery-points/rp-dev", nil)
		return code == 200 && body["valid"] == true
	})
	code, created := rest("POST", "/v1/restores", map[string]any{"recovery_point_id": "rp-dev", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "dev-1"})
	if code != 200 {
		t.Fatalf("create: HTTP %d %v", code, created)
	}
	id := created["id"].(string)
	t.Cleanup(func() { _ = exec.Command("virsh", "-c", "qemu:///system", "destroy", vmspec.DomainName(id)).Run() })
	eventually(t, 4*time.Minute, "RUNNING verified", func() bool {
		_, r := rest("GET", "/v1/restores/"+id, nil)
		b, _ := r["boot"].(map[string]any)
		return r["state"] == "RESTORE_STATE_RUNNING" && b != nil && b["verified"] == true
	})
	rest("DELETE", "/v1/restores/"+id, nil)
	eventually(t, 2*time.Minute, "DESTROYED", func() bool {
		_, r := rest("GET", "/v1/restores/"+id, nil)
		return r["state"] == "RESTORE_STATE_DESTROYED"
	})
	if out, _ := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").Output(); strings.Contains(string(out), vmspec.DomainName(id)) {
		t.Fatal("the domain is still defined")
	}
}
