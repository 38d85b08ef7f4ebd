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
	"strings"
	"syscall"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
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
func (h *Host) Export(ctx context.Context, spec hypervisor.RestoreSpec, opts hypervisor.ExportOptions) (hypervisor.Exported, error) {
	var none hypervisor.Exported
	rv := revert.New()
	defer rv.Fail()
	dir, err := h.freshRestoreDir(ctx, spec.ID, rv)
	if err != nil {
		return none, err
	}
	iscsi := opts.Protocol == kinds.ISCSI
	sock := h.restoreExportSocket(spec.ID)
	args := []string{"--pidfile", h.exportPID(spec.ID)}
	if !iscsi {
		args = append(args, "--nbd-server", "addr.type=unix,addr.path="+sock+",max-connections=16")
	}
	var out hypervisor.Exported
	var views []string // iSCSI: the raw view of each disk (a FUSE export)
	for i, d := range spec.Disks {
		if spec.Progress != nil {
			spec.Progress(hypervisor.Progress{Step: "making the overlay of disk " + d.Name})
		}
		overlay := filepath.Join(dir, d.Name+".qcow2")
		if err := storage.CreateOverlay(ctx, overlay, d.Chain[0].Path, d.Chain[0].Format); err != nil {
			return none, fmt.Errorf("overlay for disk %s: %w", d.Name, err)
		}
		backing, err := storage.QEMUChainTree(d.Chain)
		if err != nil {
			return none, err
		}
		node := fmt.Sprintf("disk%d", i)
		bd, _ := json.Marshal(map[string]any{"driver": "qcow2", "node-name": node, "read-only": !opts.ReadWrite,
			"file": map[string]any{"driver": "file", "filename": overlay}, "backing": backing})
		args = append(args, "--blockdev", string(bd))
		if iscsi {
			view := filepath.Join(dir, d.Name+".raw")
			if err := os.WriteFile(view, nil, 0o600); err != nil { // a FUSE export mounts over a file
				return none, err
			}
			views = append(views, view)
			args = append(args, "--export", fmt.Sprintf("type=fuse,id=e%d,node-name=%s,mountpoint=%s,writable=%s", i, node, view, onOff(opts.ReadWrite)))
			out.Disks = append(out.Disks, hypervisor.ExportedDisk{SnapshotDisk: hypervisor.SnapshotDisk{Name: d.Name, Size: d.Size, Source: view}, LUN: i + 1})
			continue
		}
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return none, err
		}
		export := hex.EncodeToString(b)
		args = append(args, "--export", fmt.Sprintf("type=nbd,id=e%d,node-name=%s,name=%s,writable=%s", i, node, export, onOff(opts.ReadWrite)))
		out.Disks = append(out.Disks, hypervisor.ExportedDisk{SnapshotDisk: hypervisor.SnapshotDisk{Name: d.Name, Size: d.Size, Export: export,
			URI: nbd.Target{Network: "unix", Address: sock, Export: export}.String()}})
	}
	cmd := exec.Command("qemu-storage-daemon", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// Its own process group: it outlives nothing of the agent's but the
	// agent itself ends it (Teardown, by the PID it wrote).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return none, fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	// Ready when the socket accepts (NBD), or every view has its disk's
	// size (FUSE: mounted).
	ready := func() bool {
		if !iscsi {
			c, err := net.Dial("unix", sock)
			if err == nil {
				c.Close()
			}
			return err == nil
		}
		for i, v := range views {
			if st, err := os.Stat(v); err != nil || st.Size() != spec.Disks[i].Size {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			return none, fmt.Errorf("qemu-storage-daemon did not serve: %s", strings.TrimSpace(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if iscsi {
		if out.Portal, out.IQN, out.CHAPUser, err = h.serveISCSI(ctx, spec.ID, out.Disks, opts.ReadWrite); err != nil {
			return none, err
		}
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
// its daemon serves NBD.
func (h *Host) ExportSocket(id string) (string, bool) {
	if !h.exportServing(id) {
		return "", false
	}
	if _, err := os.Stat(h.restoreExportSocket(id)); err != nil {
		return "", false
	}
	return h.restoreExportSocket(id), true
}

// exportServing says whether a restore's export daemon runs.
func (h *Host) exportServing(id string) bool {
	pid, ok := h.exportDaemon(id)
	return ok && alive(pid)
}

func (h *Host) exportDaemon(id string) (int, bool) {
	pid, ok := readNumber(h.exportPID(id))
	return pid, ok && pid > 1
}

// stopExport ends a restore's export: its iSCSI target, then its export
// daemon (by the PID it wrote), then any raw view a killed daemon left
// mounted.
func (h *Host) stopExport(id string) error {
	if err := h.stopISCSI(id); err != nil {
		return err
	}
	defer h.unmountViews(id)
	pid, ok := h.exportDaemon(id)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop the export of restore %s: %w", id, err)
	}
	awaitExit(pid)
	return nil
}
