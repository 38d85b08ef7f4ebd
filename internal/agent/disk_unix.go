//go:build !windows

package agent

import (
	"io/fs"
	"syscall"
)

// allocated is the space a file takes on disk (a sparse overlay less than
// its size).
func allocated(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Blocks) * 512
	}
	return uint64(info.Size())
}
