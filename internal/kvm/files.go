//go:build linux

package kvm

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/storage"
)

// File-level restore reads a recovery point's disks through a
// qemu-storage-daemon of its own: each disk's chain, read-only, spelled
// out (storage.QEMUChainTree: nothing in the backup is probed), one NBD
// export per disk named after it, on a unix socket in the work dir. The
// daemon dies with the agent (its parent-death signal) and is stopped by
// Stop.

func (h *Host) filesDir(key string) string { return filepath.Join(h.workDir, "files", key) }

// ServeReadOnly implements hypervisor.DiskServer.
func (h *Host) ServeReadOnly(ctx context.Context, key string, disks []hypervisor.Disk) (hypervisor.ReadOnlyDisks, error) {
	var none hypervisor.ReadOnlyDisks
	dir := h.filesDir(key)
	if err := os.RemoveAll(dir); err != nil {
		return none, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return none, err
	}
	sock := filepath.Join(dir, "nbd.sock")
	args := []string{"--nbd-server", "addr.type=unix,addr.path=" + sock + ",max-connections=64"}
	exports := map[string]string{}
	for i, d := range disks {
		tree, err := storage.QEMUChainTree(d.Chain)
		if err != nil {
			return none, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		node := fmt.Sprintf("disk%d", i)
		tree["node-name"], tree["read-only"] = node, true
		bd, _ := json.Marshal(tree)
		args = append(args, "--blockdev", string(bd),
			"--export", fmt.Sprintf("type=nbd,id=e%d,node-name=%s,name=%s,writable=off", i, node, d.Name))
		exports[d.Name] = d.Name
	}
	cmd := exec.Command("qemu-storage-daemon", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return none, fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			os.RemoveAll(dir)
			return none, fmt.Errorf("qemu-storage-daemon did not serve the disks: %s", strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			stop()
			return none, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return none, fmt.Errorf("qemu-storage-daemon did not serve the disks in 30 s: %s", strings.TrimSpace(stderr.String()))
		}
	}
	return hypervisor.ReadOnlyDisks{Socket: sock, Exports: exports, Stop: stop}, nil
}
