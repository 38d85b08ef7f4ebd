// Package testimage builds (once, cached under .cache/test-image) and finds
// Restored's bootable test image for tests and benchmarks: a raw disk with
// its own bootloader, the Debian kernel, busybox and qemu-ga (see
// images/build-test-image.sh).
package testimage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Marker is what the image's init prints on the serial console once booted.
const Marker = "RESTORED-TEST-IMAGE-BOOTED"

// LoginPrompt is what the serial console shows when the boot is complete.
const LoginPrompt = "login:"

var (
	once sync.Once
	path string
	err  error
)

// Path builds the image if needed and returns its path. root is the
// module's root directory.
func Path(root string) (string, error) {
	once.Do(func() {
		if root, err = filepath.Abs(root); err != nil {
			return
		}
		script := filepath.Join(root, "images", "build-test-image.sh")
		cmd := exec.Command(script, filepath.Join(root, ".cache", "test-image"))
		cmd.Dir = root
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, e := cmd.Output()
		if e != nil {
			err = fmt.Errorf("build test image: %w\n%s", e, stderr.String())
			return
		}
		path = strings.TrimSpace(string(out))
		if _, e := os.Stat(path); e != nil {
			err = fmt.Errorf("build test image: %s not found: %w", path, e)
		}
	})
	return path, err
}
