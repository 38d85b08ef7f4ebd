package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/diskfree"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// smallFS mounts a tmpfs of size MiB of the test's own, unmounted when
// the test ends (after everything registered later, the server included).
func smallFS(t *testing.T, mib int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", mib), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %d MiB tmpfs: %v %s", mib, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

func freeMiB(t *testing.T, dir string) int64 {
	t.Helper()
	free, err := diskfree.Bytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	return int64(free >> 20)
}

// fill writes a file into dir until under leave MiB are free.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for freeMiB(t, dir) >= leave {
		if _, err := f.Write(chunk); err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	return path
}

// When the raft directory's disk runs out of space, writes are refused
// with a clear error before raft (no entry, the leader keeps leading, reads
// go on), writes work again as soon as space is freed, and the state on
// disk is whole: a restart from it holds every accepted write.
func TestAFullRaftDiskRefusesWritesClearlyAndRecoversWhenSpaceIsFreed(t *testing.T) {
	dir := smallFS(t, 64)
	opts := serverOpts{dataDir: dir, raftMinFreeMiB: 24, raftSegmentMiB: 8}
	e := startServer(t, opts)
	e.tenant("before")

	filler := fill(t, dir, 12)
	before := e.quiesce()
	_, err := e.admins().CreateTenant(e.ctx(e.admin), &restorev1.CreateTenantRequest{Id: "while-full"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "raft directory") ||
		!strings.Contains(err.Error(), "MiB free, less than the 24 MiB it keeps in reserve") {
		t.Fatalf("a write on a full disk: %v, want RESOURCE_EXHAUSTED naming the raft directory and its reserve", err)
	}
	code, body := e.rest("POST", "/v1/tenants", e.admin, map[string]any{"id": "while-full-rest"})
	if code != 429 || !strings.Contains(body["message"].(string), "writes are refused until space is freed") {
		t.Fatalf("over REST: HTTP %d %v, want 429 with the reason", code, body)
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused writes left %d raft entries", after-before)
	}
	if !e.srv.Node().IsLeader() {
		t.Fatal("the leader stepped down: raft met the full disk")
	}
	tenants, err := e.admins().ListTenants(e.ctx(e.admin), &restorev1.ListTenantsRequest{})
	if err != nil || len(tenants.Tenants) != 1 {
		t.Fatalf("reads on a full disk: %v %v", tenants, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "writes to be taken again", func() bool {
		_, err := e.admins().CreateTenant(e.ctx(e.admin), &restorev1.CreateTenantRequest{Id: "after"})
		return err == nil
	})
	t.Logf("writes taken again %s after the space was freed", time.Since(start).Round(time.Millisecond))

	e.srv.Stop()
	again := startServer(t, opts)
	got, err := again.admins().ListTenants(again.ctx(again.admin), &restorev1.ListTenantsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tn := range got.Tenants {
		ids = append(ids, tn.Id)
	}
	if strings.Join(ids, ",") != "after,before" {
		t.Fatalf("after a restart from the disk that was full: tenants %v, want after and before", ids)
	}
}
