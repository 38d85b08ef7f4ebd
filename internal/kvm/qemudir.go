package kvm

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// qemuUsers are the accounts QEMU runs as under libvirt (Debian's first).
var qemuUsers = []string{"libvirt-qemu", "qemu"}

// QEMUDir makes dir (mode 0700) owned by the account QEMU runs as, for
// what QEMU itself creates there (the NBD server's unix socket): nobody
// but QEMU and root can reach it.
func QEMUDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, name := range qemuUsers {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("give %s to %s: %w", dir, name, err)
		}
		return os.Chmod(dir, 0o700)
	}
	return fmt.Errorf("no account QEMU runs as (%v) exists on this host", qemuUsers)
}
