//go:build !windows

package diskfree

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Bytes is the space an unprivileged writer has left on dir's filesystem.
func Bytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
