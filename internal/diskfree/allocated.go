package diskfree

import (
	"io/fs"
	"path/filepath"
)

// DirBytes is the space the files under dir take on disk (a sparse file
// less than its size); files that vanish meanwhile count nothing.
func DirBytes(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err == nil {
			n += allocated(info)
		}
		return nil
	})
	return n, err
}
