package agent

import "io/fs"

// allocated is the space a file takes on disk (its size: Windows does not
// say through FileInfo).
func allocated(info fs.FileInfo) uint64 { return uint64(info.Size()) }
