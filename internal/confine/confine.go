// Package confine owns what a restore's QEMU is and what it may read. Each
// restore's QEMU runs as a uid of its own (group kvm, for /dev/kvm), never
// root and never the libvirt-qemu user every other domain shares; it is
// granted read access to exactly its recovery point's chain, by POSIX ACL
// entries that live as long as the restore; the repository itself is
// never readable by others (files 0640, directories 0750 at most, the root
// 0711). A restore whose domain XML named another tenant's file could not
// open it. It must not decide which files a restore needs (the agent says)
// nor run anything in libvirt.
package confine

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The range restore uids come from: far above any user a distribution or
// an operator makes, below the 32-bit "nobody" values.
const (
	BaseUID  = 2_000_000_000
	uidRange = 1 << 24
)

// Identity is the uid and gid a restore's QEMU runs as.
type Identity struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Granted are the files and directories given to this uid, to take
	// back at teardown.
	Granted []string `json:"granted,omitempty"`
}

// Label is the identity as libvirt's static DAC label says it.
func (i Identity) Label() string { return fmt.Sprintf("+%d:+%d", i.UID, i.GID) }

// KVMGroup is the gid QEMU needs for /dev/kvm: the kvm group, else the
// libvirt-qemu user's group.
func KVMGroup() (uint32, error) {
	if g, err := user.LookupGroup("kvm"); err == nil {
		id, err := strconv.ParseUint(g.Gid, 10, 32)
		return uint32(id), err
	}
	if u, err := user.Lookup("libvirt-qemu"); err == nil {
		id, err := strconv.ParseUint(u.Gid, 10, 32)
		return uint32(id), err
	}
	return 0, errors.New("neither a kvm group nor a libvirt-qemu user exists: install libvirt-daemon-system")
}

// Choose picks restore id's uid: a hash of the id, moved on past any uid a
// process already runs as (another restore's, even another agent's on the
// same machine) and past taken (this agent's restores not started yet).
func Choose(restoreID string, gid uint32, taken map[uint32]bool) Identity {
	h := fnv.New32a()
	_, _ = h.Write([]byte(restoreID))
	live := LiveUIDs()
	n := h.Sum32() % uidRange
	for {
		uid := BaseUID + n
		if !live[uid] && !taken[uid] {
			return Identity{UID: uid, GID: gid}
		}
		n = (n + 1) % uidRange
	}
}

// LiveUIDs are the real uids of the processes running now in the range.
func LiveUIDs() map[uint32]bool {
	out := map[uint32]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if uid, ok := ProcUID(e.Name()); ok && uid >= BaseUID && uid < BaseUID+uidRange {
			out[uid] = true
		}
	}
	return out
}

// ProcUID is the real uid of process pid (from /proc/PID/status).
func ProcUID(pid string) (uint32, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseUint(f[0], 10, 32)
			return uint32(v), err == nil
		}
	}
	return 0, false
}

// mu serializes this process's grants (flock serializes processes).
var mu sync.Mutex

// Grant gives id read access to files and traversal of their directories
// up to root (root itself is left 0711). It records what it granted in id.
func Grant(id *Identity, root string, files []string) error {
	mu.Lock()
	defer mu.Unlock()
	root = filepath.Clean(root)
	seen := map[string]bool{}
	for _, f := range files {
		f = filepath.Clean(f)
		if !inside(root, f) {
			return fmt.Errorf("%s is outside the repository %s", f, root)
		}
		if err := grantOne(id, f, permRead, seen); err != nil {
			return err
		}
		for d := filepath.Dir(f); d != root && inside(root, d); d = filepath.Dir(d) {
			if err := grantOne(id, d, permExecute, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func grantOne(id *Identity, path string, perm uint16, seen map[string]bool) error {
	if seen[path] {
		return nil
	}
	seen[path] = true
	if err := editACL(path, tagUser, id.UID, perm); err != nil {
		return err
	}
	id.Granted = append(id.Granted, path)
	return nil
}

// Revoke takes back everything id was granted (a file that is gone has
// nothing to take back).
func Revoke(id Identity) error {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	for _, p := range id.Granted {
		if err := editACL(p, tagUser, id.UID, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Allowed says whether uid holds a grant on path (for tests and checks).
func Allowed(path string, uid uint32, read bool) (bool, error) {
	perm := uint16(permExecute)
	if read {
		perm = permRead
	}
	return aclAllows(path, tagUser, uid, perm)
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..")
}

// Tighten makes the repository unreadable by others: its root 0711 (others
// may pass, not list), every directory and file under it without any
// permission for others. Backup jobs and operators may write with any
// umask; the agent tightens at every scan.
func Tighten(root string) error {
	if err := os.Chmod(root, 0o711); err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // symlinks are refused by the scan; never follow them here
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o007 != 0 {
			return os.Chmod(p, m&^0o007)
		}
		return nil
	})
}

// ReachRoot lets group gid (every restore's QEMU) traverse root's
// ancestors that others may not, with one ACL entry each: an operator's
// repository under a 0700 directory still works, and nothing is listable.
func ReachRoot(root string, gid uint32) ([]string, error) {
	return reach(filepath.Dir(filepath.Clean(root)), gid)
}

// LibvirtDirs are where libvirt puts each domain's own directory (its
// master key, its guest agent socket): 0750 for the libvirt-qemu user, so
// a QEMU of another uid must be let through.
var LibvirtDirs = []string{"/var/lib/libvirt/qemu/channel/target", "/var/lib/libvirt/qemu"}

// ReachLibvirt lets group gid traverse libvirt's per-domain directories'
// parents (those that exist).
func ReachLibvirt(gid uint32) ([]string, error) {
	var changed []string
	for _, d := range LibvirtDirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		c, err := reach(d, gid)
		changed = append(changed, c...)
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// reach grants gid traverse on dir and every ancestor others may not pass.
func reach(dir string, gid uint32) ([]string, error) {
	mu.Lock()
	defer mu.Unlock()
	var changed []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return changed, err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			ok, err := aclAllows(d, tagGroup, gid, permExecute)
			if err != nil {
				return changed, err
			}
			if !ok {
				if err := editACL(d, tagGroup, gid, permExecute); err != nil {
					return changed, err
				}
				changed = append(changed, d)
			}
		}
		if d == "/" {
			return changed, nil
		}
	}
}

// Save and Load keep a restore's identity in its work dir, so a teardown
// after an agent restart takes back exactly what was granted.
func Save(path string, id Identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Load reads what Save wrote; a missing file is no identity (ok false).
func Load(path string) (Identity, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return id, true, nil
}
