package backupjob

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/storage"
)

// target is a new qcow2 being written through qemu-nbd.
type target struct {
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	conn    *nbd.Conn
	done    chan error
	sockDir string
}

// createQCOW2 makes path: size bytes, or an overlay on backing (a path
// relative to path's directory) when backing is set.
func createQCOW2(ctx context.Context, path string, size int64, backing string) error {
	args := []string{"create", "-q", "-f", kinds.QCOW2.String()}
	if backing != "" {
		// -u: the backing path is relative to the image's final directory.
		args = append(args, "-u", "-b", backing, "-F", kinds.QCOW2.String())
	}
	args = append(args, path, strconv.FormatInt(size, 10))
	_, err := storage.QemuImg(ctx, args...)
	return err
}

// openTarget serves path with qemu-nbd on a socket in a short-lived
// directory of its own (a unix socket path must stay under 108 bytes) and
// connects.
func openTarget(ctx context.Context, path string) (*target, error) {
	sockDir, err := os.MkdirTemp("", "restorectl-nbd-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(sockDir, "target.sock")
	t := &target{done: make(chan error, 1), sockDir: sockDir}
	t.cmd = exec.Command("qemu-nbd", "-f", kinds.QCOW2.String(), "-x", "target", "-k", sock, "--cache=writeback", path)
	t.cmd.Stderr = &t.stderr
	if err := t.cmd.Start(); err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("start qemu-nbd: %w", err)
	}
	go func() { t.done <- t.cmd.Wait(); _ = os.RemoveAll(sockDir) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			c, err := nbd.Dial(ctx, "unix", sock, nbd.Options{Export: "target"})
			if err == nil {
				t.conn = c
				return t, nil
			}
		}
		select {
		case err := <-t.done:
			return nil, fmt.Errorf("qemu-nbd on %s exited: %v: %s", path, err, bytes.TrimSpace(t.stderr.Bytes()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.kill()
			return nil, fmt.Errorf("qemu-nbd did not serve %s within 10s: %s", path, bytes.TrimSpace(t.stderr.Bytes()))
		}
	}
}

// close flushes, disconnects and waits for qemu-nbd to exit (it does when
// its only client leaves), so that the image is complete on disk.
func (t *target) close() error {
	err := t.conn.Flush()
	_ = t.conn.Close()
	select {
	case werr := <-t.done:
		if err == nil && werr != nil {
			err = fmt.Errorf("qemu-nbd: %v: %s", werr, bytes.TrimSpace(t.stderr.Bytes()))
		}
	case <-time.After(30 * time.Second):
		t.kill()
		err = fmt.Errorf("qemu-nbd did not exit after the last write")
	}
	return err
}

// kill stops qemu-nbd (our own child, by PID) after a failure.
func (t *target) kill() {
	if t.conn != nil {
		_ = t.conn.Close()
	}
	_ = t.cmd.Process.Kill()
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
	}
}
