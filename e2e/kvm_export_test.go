package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/nbd"
)

// exportCreds asks for an EXPORT restore's client certificate over REST
// and writes it (GnuTLS names) into a directory.
func (s *kvmStack) exportCreds(token, id string) (*tls.Config, string) {
	s.t.Helper()
	return s.readerCreds("/v1/restores/"+id+"/credentials", token)
}

// startExport creates an EXPORT restore of rp-1 and waits until it runs.
func (s *kvmStack) startExport(requestID string, readWrite bool) map[string]any {
	s.t.Helper()
	code, body := s.rest("POST", "/v1/restores", s.acme, map[string]any{"recovery_point_id": "rp-1", "mode": "EXPORT",
		"export": map[string]any{"read_write": readWrite}, "request_id": requestID})
	if code != 200 {
		s.t.Fatalf("create an export: HTTP %d %v", code, body)
	}
	id := body["id"].(string)
	// Whatever happens, no daemon of this test outlives it (by its PID).
	pidFile := filepath.Join(s.work, "restores", id, "export.pid")
	s.t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	var r map[string]any
	eventually(s.t, 2*time.Minute, "export "+id+" RUNNING", func() bool {
		_, r = s.rest("GET", "/v1/restores/"+id, s.acme, nil)
		if r["state"] == "RESTORE_STATE_FAILED" {
			s.t.Fatalf("the export failed: %v", r["state_reason"])
		}
		return r["state"] == "RESTORE_STATE_RUNNING" && r["export"] != nil
	})
	return r
}

// An EXPORT restore serves the recovery point's disk over NBD with TLS to
// its own certificate only: qemu-img reads exactly the recovery point; a
// read-write export takes writes into its overlay and never into the
// recovery point; another export's certificate reaches nothing of it;
// DELETE ends it and leaves nothing.
func TestExportsServeTheRecoveryPointOverNBDWithTLS(t *testing.T) {
	s := startKVMStack(t)
	before := fileFacts(t, s.disk)

	// Read-only, read by qemu-img over TLS.
	ro := s.startExport("exp-ro", false)
	exp := ro["export"].(map[string]any)
	disk := exp["disks"].([]any)[0].(map[string]any)
	uri := disk["nbd_uri"].(string)
	if !strings.HasPrefix(uri, "nbds://") || exp["read_write"] == true || !strings.Contains(exp["nbd_ca_cert"].(string), "BEGIN CERTIFICATE") {
		t.Fatalf("the RUNNING export: %v", exp)
	}
	t.Logf("RUNNING: %s; %s", ro["state_reason"], uri)
	if code, _ := s.rest("POST", "/v1/restores/"+ro["id"].(string)+"/credentials", s.globex, map[string]any{}); code != 404 {
		t.Fatalf("globex got credentials for acme's export: HTTP %d", code)
	}
	roTLS, dir := s.exportCreds(s.acme, ro["id"].(string))
	u, _ := url.Parse(uri)
	host, port := u.Hostname(), u.Port()
	copyPath := filepath.Join(t.TempDir(), "copy.raw")
	out, err := exec.Command("qemu-img", "convert", "-O", "raw", "--object", "tls-creds-x509,id=tls0,endpoint=client,dir="+dir, "--image-opts",
		fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%s,export=%s,tls-creds=tls0", host, port, disk["export_name"]), copyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img over TLS: %v\n%s", err, out)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", s.disk, copyPath).CombinedOutput(); err != nil {
		t.Fatalf("the export differs from the recovery point: %v\n%s", err, out)
	}
	c, err := dialExport(uri, roTLS)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ReadOnly() {
		t.Fatal("a read-only export takes writes")
	}
	c.Close()
	if _, err := dialExport(uri, nil); err == nil {
		t.Fatal("the gate served an export in plaintext")
	}

	// Read-write: writes land in the overlay.
	rw := s.startExport("exp-rw", true)
	rwDisk := rw["export"].(map[string]any)["disks"].([]any)[0].(map[string]any)
	rwTLS, _ := s.exportCreds(s.acme, rw["id"].(string))
	c, err = dialExport(rwDisk["nbd_uri"].(string), rwTLS)
	if err != nil {
		t.Fatal(err)
	}
	mark := bytes.Repeat([]byte("restored-export!"), 4096) // 64 KiB
	if _, err := c.WriteAt(mark, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(mark))
	if _, err := c.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, mark) {
		t.Fatalf("the write does not read back: %v", err)
	}
	c.Close()
	// The other export's certificate reaches only its own export.
	if _, err := dialExport(rwDisk["nbd_uri"].(string), roTLS); !errors.Is(err, nbd.ErrUnknownExport) {
		t.Fatalf("the read-only export's certificate and the read-write export: %v, want an unknown export", err)
	}
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed under a read-write export:\n%s\n%s", before, after)
	}

	// DELETE ends both; nothing is served or left.
	for _, r := range []map[string]any{ro, rw} {
		id := r["id"].(string)
		if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
			t.Fatalf("delete %s: HTTP %d %v", id, code, body)
		}
		eventually(t, time.Minute, id+" DESTROYED", func() bool {
			_, x := s.rest("GET", "/v1/restores/"+id, s.acme, nil)
			return x["state"] == "RESTORE_STATE_DESTROYED" && x["export"] == nil
		})
		if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
			t.Fatalf("the export's work dir is left: %v", err)
		}
	}
	if _, err := dialExport(uri, roTLS); err == nil {
		t.Fatal("a deleted export still answers")
	}
	if out, _ := exec.Command("pgrep", "-f", "qemu-storage-daemon.*"+s.work).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("qemu-storage-daemon left running: %s", out)
	}
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed:\n%s\n%s", before, after)
	}
}
