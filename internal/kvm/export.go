//go:build linux

package kvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/storage"
)

// EXPORT restores on KVM: the recovery point's disks behind copy-on-write
// overlays in the restore's work dir, served by one qemu-storage-daemon
// (one NBD server, an export per disk with a random name) on a unix socket
// only this host reaches; the agent's NBD gate serves it over TLS to the
// export's certificate. The overlay's chain is spelled out for QEMU
// (storage.QEMUChainTree), so nothing in the backup is probed, and no
// write ever reaches the recovery point: read-write exports write the
// overlay.

func (h *Host) restoreExportSocket(id string) string {
	return filepath.Join(h.restoreDir(id), "nbd.sock")
}
func (h *Host) exportPID(id string) string { return filepath.Join(h.restoreDir(id), "export.pid") }

// Export implements hypervisor.Exporter.
func (h *Host) Export(ctx context.Context, spec hypervisor.RestoreSpec, readWrite bool) ([]hypervisor.SnapshotDisk, error) {
	rv := revert.New()
	defer rv.Fail()
	dir, err := h.freshRestoreDir(ctx, spec.ID, rv)
	if err != nil {
		return nil, err
	}
	sock := h.restoreExportSocket(spec.ID)
	args := []string{"--nbd-server", "addr.type=unix,addr.path=" + sock + ",max-connections=16", "--pidfile", h.exportPID(spec.ID)}
	var out []hypervisor.SnapshotDisk
	for i, d := range spec.Disks {
		if spec.Progress != nil {
			spec.Progress(hypervisor.Progress{Step: "making the overlay of disk " + d.Name})
		}
		overlay := filepath.Join(dir, d.Name+".qcow2")
		if err := storage.CreateOverlay(ctx, overlay, d.Chain[0].Path, d.Chain[0].Format); err != nil {
			return nil, fmt.Errorf("overlay for disk %s: %w", d.Name, err)
		}
		backing, err := storage.QEMUChainTree(d.Chain)
		if err != nil {
			return nil, err
		}
		node := fmt.Sprintf("disk%d", i)
		bd, _ := json.Marshal(map[string]any{"driver": "qcow2", "node-name": node, "read-only": !readWrite,
			"file": map[string]any{"driver": "file", "filename": overlay}, "backing": backing})
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		export := hex.EncodeToString(b)
		args = append(args, "--blockdev", string(bd),
			"--export", fmt.Sprintf("type=nbd,id=e%d,node-name=%s,name=%s,writable=%s", i, node, export, onOff(readWrite)))
		out = append(out, hypervisor.SnapshotDisk{Name: d.Name, Size: d.Size, Export: export,
			URI: nbd.Target{Network: "unix", Address: sock, Export: export}.String()})
	}
	cmd := exec.Command("qemu-storage-daemon", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// Its own process group: it outlives nothing of the agent's but the
	// agent itself ends it (Teardown, by the PID it wrote).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	// Ready when the socket accepts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("qemu-storage-daemon did not serve: %s", strings.TrimSpace(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rv.Success()
	return out, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// ExportSocket implements hypervisor.Exporter: a restore's socket while
// its daemon serves.
func (h *Host) ExportSocket(id string) (string, bool) {
	pid, ok := h.exportDaemon(id)
	if !ok || syscall.Kill(pid, 0) != nil {
		return "", false
	}
	return h.restoreExportSocket(id), true
}

func (h *Host) exportDaemon(id string) (int, bool) {
	b, err := os.ReadFile(h.exportPID(id))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}

// stopExport ends a restore's export daemon, by the PID it wrote.
func (h *Host) stopExport(id string) error {
	pid, ok := h.exportDaemon(id)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop the export of restore %s: %w", id, err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}
