package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/restored/restored/internal/confine"
)

// qemuOf is the pid of the QEMU running restore id (libvirt's pid file).
func qemuOf(t *testing.T, id string) string {
	t.Helper()
	files, _ := filepath.Glob("/run/libvirt/qemu/*" + id + ".pid")
	if len(files) != 1 {
		t.Fatalf("pid files of restore %s: %v", id, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// statusField is one line of /proc/PID/status, split.
func statusField(t *testing.T, pid, name string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no %s in /proc/%s/status", name, pid)
	return nil
}

// opensAs says whether uid:gid (QEMU's identity, no other groups) may open
// path for reading.
func opensAs(uid, gid uint32, path string) bool {
	cmd := exec.Command("/usr/bin/head", "-c", "1", path)
	cmd.Stdout = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	return cmd.Run() == nil
}

// checkConfined proves, on a running restore, what confine promises: QEMU
// runs as a uid of its own (not root, not libvirt-qemu) under QEMU's
// seccomp sandbox; that uid reads its recovery point and cannot open
// another tenant's, even though it could name it; no recovery point is
// readable by others. It returns QEMU's uid and gid.
func checkConfined(t *testing.T, s *kvmStack, id string) (uint32, uint32) {
	t.Helper()
	pid := qemuOf(t, id)
	uids, gids := statusField(t, pid, "Uid"), statusField(t, pid, "Gid")
	uid64, _ := strconv.ParseUint(uids[0], 10, 32)
	gid64, _ := strconv.ParseUint(gids[0], 10, 32)
	uid, gid := uint32(uid64), uint32(gid64)
	for _, u := range uids {
		if u != uids[0] {
			t.Fatalf("QEMU's uids differ: %v", uids)
		}
	}
	if uid < confine.BaseUID {
		t.Fatalf("QEMU runs as uid %d, not a restore's own (>= %d)", uid, confine.BaseUID)
	}
	if kvmGID, _ := confine.KVMGroup(); gid != kvmGID {
		t.Fatalf("QEMU's gid %d, want kvm's %d", gid, kvmGID)
	}
	if sec := statusField(t, pid, "Seccomp"); sec[0] != "2" {
		t.Fatalf("QEMU's seccomp mode %v, want 2 (filter)", sec)
	}
	cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	if !strings.Contains(string(cmdline), "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny") {
		t.Fatalf("QEMU's sandbox is not on with everything denied: %s", strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	// Another tenant's recovery point, as a backup job would write it.
	other := filepath.Join(s.repo, "globex", "db", "rp-g1", "disk0.raw")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("globex's data"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(s.repo, "globex")) })
	if err := confine.Tighten(s.repo); err != nil { // what the agent does at every scan
		t.Fatal(err)
	}
	if !opensAs(uid, gid, s.disk) {
		t.Fatalf("QEMU's uid cannot read its own recovery point %s", s.disk)
	}
	if opensAs(uid, gid, other) {
		t.Fatalf("QEMU's uid of an acme restore opened globex's recovery point %s", other)
	}
	_ = filepath.Walk(s.repo, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != s.repo && fi.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is %v: others may use it", p, fi.Mode().Perm())
		}
		return nil
	})
	t.Logf("QEMU pid %s runs as %d:%d, seccomp 2, sandbox on; reads %s, not %s", pid, uid, gid, filepath.Base(s.disk), other)
	return uid, gid
}
