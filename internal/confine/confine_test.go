package confine

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// canRead runs cat as uid:gid (no supplementary groups) on path.
func canRead(t *testing.T, id Identity, path string) bool {
	t.Helper()
	cmd := exec.Command("/bin/cat", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: []uint32{}}}
	return cmd.Run() == nil
}

func write(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("disk bytes"), mode); err != nil {
		t.Fatal(err)
	}
}

// The design, proven with real processes of restore uids: after Tighten no
// file of the repository is readable by others; a grant lets one restore's
// uid read exactly its chain (through directories only it may pass), not
// another tenant's file nor another restore's, and a revoke takes it back.
func TestARestoreUIDReadsOnlyTheChainItWasGranted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("confine tests run as root (make test does): they change owners and ACLs")
	}
	// A parent others may not pass, as t.TempDir makes.
	top := t.TempDir()
	root := filepath.Join(top, "repository")
	a := filepath.Join(root, "acme", "web", "rp-2", "disk0.qcow2")
	aBase := filepath.Join(root, "acme", "web", "rp-1", "disk0.raw")
	b := filepath.Join(root, "globex", "db", "rp-9", "disk0.raw")
	for _, p := range []string{a, aBase, b} {
		write(t, p, 0o644) // a backup job's umask: world-readable
	}
	if err := Tighten(root); err != nil {
		t.Fatal(err)
	}
	gid, err := KVMGroup()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReachRoot(root, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // ReachRoot's entries on the test's own dirs
		for d := root; d != filepath.Dir(top); d = filepath.Dir(d) {
			_ = editACL(d, tagGroup, gid, 0)
		}
	})
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != root && fi.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is %v after Tighten: others may use it", p, fi.Mode().Perm())
		}
		return nil
	})

	restoreA := Choose("restore-a", gid, nil)
	restoreB := Choose("restore-b", gid, map[uint32]bool{restoreA.UID: true})
	if restoreA.UID < BaseUID || restoreA.UID == restoreB.UID {
		t.Fatalf("identities %v %v", restoreA, restoreB)
	}
	if canRead(t, restoreA, a) {
		t.Fatal("a restore uid reads a recovery point before any grant")
	}
	if err := Grant(&restoreA, root, []string{a, aBase}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		id   Identity
		path string
		want bool
	}{
		{"its own chain's top", restoreA, a, true},
		{"its own chain's base", restoreA, aBase, true},
		{"another tenant's recovery point", restoreA, b, false},
		{"another restore reads the granted chain", restoreB, a, false},
		{"another restore reads another tenant's", restoreB, b, false},
	} {
		if got := canRead(t, c.id, c.path); got != c.want {
			t.Errorf("%s: read %v, want %v", c.name, got, c.want)
		}
	}
	if err := Revoke(restoreA); err != nil {
		t.Fatal(err)
	}
	if canRead(t, restoreA, a) {
		t.Fatal("the grant outlived its revoke")
	}
	for _, p := range restoreA.Granted {
		if ok, _ := Allowed(p, restoreA.UID, false); ok {
			t.Fatalf("%s still names the uid", p)
		}
	}
	if err := Grant(&restoreB, root, []string{"/etc/shadow"}); err == nil {
		t.Fatal("a grant outside the repository")
	}
}

func TestIdentitiesAreKeptAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "confine.json")
	if _, ok, err := Load(path); ok || err != nil {
		t.Fatalf("nothing saved: %v %v", ok, err)
	}
	id := Identity{UID: BaseUID + 7, GID: 107, Granted: []string{"/x"}}
	if err := Save(path, id); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(path)
	if !ok || err != nil || got.UID != id.UID || got.Label() != "+2000000007:+107" || len(got.Granted) != 1 {
		t.Fatalf("%v %v %v", got, ok, err)
	}
}
