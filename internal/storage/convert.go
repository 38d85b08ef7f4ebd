package storage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/restored/restored/internal/kinds"
)

// convertMemory bounds a conversion's address space: qemu-img convert
// keeps a few buffers per coroutine, whatever the disk's size.
const convertMemory = 2 << 30

// ConvertSpec is one disk of a recovery point converted to an image file.
type ConvertSpec struct {
	// Chain is the disk's chain, spelled out for QEMU (QEMUChain).
	Chain []Layer
	// Out is the file written (it must not exist).
	Out    string
	Format kinds.ImageFormat
	// QemuImg is the program ("": qemu-img on PATH).
	QemuImg string
	// Size is the disk's virtual size: progress counts bytes of it.
	Size int64
	// Progress, when set, is called as the conversion goes (done of
	// Size), at most once per percent.
	Progress func(done, total int64)
}

// Convert converts a disk to an image file: the one way every driver and
// image download does it. Its chain is given explicitly (nothing in the
// backup is probed); output is sparse, bypasses the host's page cache and
// runs at a low CPU priority under a memory limit (on Windows, where
// neither nice nor prlimit exists, as it is): a conversion of a large disk
// must not starve the host.
func Convert(ctx context.Context, spec ConvertSpec) error {
	if !spec.Format.Valid() {
		return fmt.Errorf("convert to %d: not an image format", spec.Format)
	}
	src, err := QEMUChain(spec.Chain)
	if err != nil {
		return err
	}
	format, options := spec.Format.QEMU()
	args := []string{"convert", "-p", "-O", format}
	if runtime.GOOS != "windows" {
		args = append(args, "-t", "none")
	}
	if options != "" {
		args = append(args, "-o", options)
	}
	args = append(args, src, spec.Out)
	prog := spec.QemuImg
	if prog == "" {
		prog = "qemu-img"
	}
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, prog, args...)
	} else {
		cmd = exec.CommandContext(ctx, "nice", append([]string{"-n", "10", "prlimit", "--as=" + strconv.Itoa(convertMemory), "--", prog}, args...)...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu-img convert: %w", err)
	}
	readProgress(stdout, spec.Size, spec.Progress) // until qemu-img closes it
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("qemu-img convert to %s: %w: %s", spec.Format, err, strings.TrimSpace(stderr.String()))
	}
	if spec.Progress != nil {
		spec.Progress(spec.Size, spec.Size)
	}
	return nil
}

// readProgress reads qemu-img's -p output ("    (12.00/100%)\r") and
// reports each whole percent once.
func readProgress(r io.Reader, size int64, report func(done, total int64)) {
	s := bufio.NewScanner(r)
	s.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	last := -1
	for s.Scan() {
		pct, ok := parsePercent(s.Text())
		if !ok || int(pct) == last || report == nil {
			continue
		}
		last = int(pct)
		report(int64(pct/100*float64(size)), size)
	}
	_, _ = io.Copy(io.Discard, r)
}

func parsePercent(line string) (float64, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "(") || !strings.HasSuffix(line, "/100%)") {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "("), "/100%)"), 64)
	return v, err == nil && v >= 0 && v <= 100
}
