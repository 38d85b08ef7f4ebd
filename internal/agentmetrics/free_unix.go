//go:build !windows

package agentmetrics

import "golang.org/x/sys/unix"

// freeBytes is the space an unprivileged writer has left on dir's
// filesystem (-1 when it cannot be read).
func freeBytes(dir string) float64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return -1
	}
	return float64(st.Bavail) * float64(st.Bsize)
}
