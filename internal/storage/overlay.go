package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/restored/restored/internal/kinds"
)

// Limits for every qemu-img run: a hostile image must not eat the host.
const (
	qemuImgCPUSeconds = 30
	qemuImgMemory     = 1 << 30 // address space, bytes
	qemuImgTimeout    = 60 * time.Second
)

// QemuImg runs qemu-img under CPU and memory limits (prlimit) and a
// deadline. Callers always pass the format (-f, and -F for backing files).
func QemuImg(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, qemuImgTimeout)
	defer cancel()
	full := append([]string{
		"--cpu=" + strconv.Itoa(qemuImgCPUSeconds), "--as=" + strconv.Itoa(qemuImgMemory), "--", "qemu-img",
	}, args...)
	cmd := exec.CommandContext(ctx, "prlimit", full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("qemu-img %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// CreateOverlay makes a qcow2 overlay at path whose backing file is the
// recovery point disk at backing (absolute, with its declared format). It
// costs the same whatever the backing disk's size: nothing is copied, and
// the backing file is only opened read-only to read its size.
func CreateOverlay(ctx context.Context, path, backing string, backingFormat kinds.DiskFormat) error {
	if !filepath.IsAbs(backing) {
		return fmt.Errorf("overlay backing file %q must be absolute", backing)
	}
	if !backingFormat.Valid() {
		return fmt.Errorf("overlay backing format %s must be raw or qcow2", backingFormat)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("overlay %s already exists", path)
	}
	_, err := QemuImg(ctx, "create", "-q", "-f", kinds.QCOW2.String(), "-b", backing, "-F", backingFormat.String(), path)
	return err
}
