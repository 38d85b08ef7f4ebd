package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/cli"
)

// A site file through restorectl on a real agent: a batch of an EXPORT and
// an IMAGE of the same recovery point, followed with --watch until both
// run (the batch's own progress after each change); DELETE leaves nothing.
func TestASiteFileRestoresThroughRestorectlWithTheBatchsProgress(t *testing.T) {
	s := startKVMStack(t)
	path := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(path, []byte(`request_id: site-kvm
items:
  - {recovery_point: rp-1, mode: export}
  - {recovery_point: rp-1, mode: image, format: qcow2, ttl: 30m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := cli.Execute([]string{"--addr", s.srv.GRPC, "--ca-cert", s.ca, "--token", s.acme, "--timeout", "2m",
		"restore", "create", "--from-file", path, "--watch"}, &out, &errOut)
	t.Logf("restorectl restore create --from-file site.yaml --watch:\n%s", out.String())
	_, list := s.rest("GET", "/v1/restores", s.acme, nil)
	var ids []string
	for _, x := range list["restores"].([]any) {
		id := x.(map[string]any)["id"].(string)
		ids = append(ids, id)
		pidFile := filepath.Join(s.work, "restores", id, "export.pid")
		t.Cleanup(func() { // no daemon of this test outlives it, by its PID
			if b, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if len(ids) != 2 || !strings.Contains(out.String(), "2 RUNNING (of 2)") || !strings.Contains(out.String(), "exported over NBD") || !strings.Contains(out.String(), "qcow2 file(s)") {
		t.Fatalf("the batch did not run as asked: %d restores\n%s", len(ids), out.String())
	}
	for _, id := range ids {
		if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
			t.Fatalf("delete %s: HTTP %d %v", id, code, body)
		}
	}
	for _, id := range ids {
		s.waitState(id, "RESTORE_STATE_DESTROYED", time.Minute, nil)
		if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
			t.Fatalf("restore %s left its work dir: %v", id, err)
		}
	}
}
