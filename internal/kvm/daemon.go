//go:build linux

package kvm

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The daemons a restore without a domain runs (its export's
// qemu-storage-daemon, its iSCSI target's tgtd) are known by numbers kept
// in its work dir: their PIDs and tgtd's control port.

// readNumber reads the positive number a file holds.
func readNumber(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil && n > 0
}

// alive says whether process pid runs.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// awaitExit gives a process asked to end two seconds, then kills it.
func awaitExit(pid int) {
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
