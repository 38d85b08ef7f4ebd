package hyperv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
)

// Restores on Hyper-V: each disk of the recovery point is converted by
// qemu-img from its explicit chain into a dynamic VHDX in the restore's
// directory, a VM is made of them (generation 2 for UEFI, 1 for BIOS),
// and started. The VM's notes say whose it is, so the host finds its own
// again.

func restoreName(id string) string { return "restored-" + id }

func (h *Host) restoreDir(id string) string { return filepath.Join(h.cfg.VMDir, restoreName(id)) }

// generation is the VM generation of a firmware.
func generation(f kinds.Firmware) int {
	if f == kinds.UEFI {
		return 2
	}
	return 1
}

// Prepare implements hypervisor.Restorer.
func (h *Host) Prepare(ctx context.Context, spec hypervisor.RestoreSpec) error {
	if spec.Network != kinds.NoNetwork && spec.Network != 0 {
		return fmt.Errorf("a restore onto Hyper-V has no network yet: ask for network NONE (it was %s)", spec.Network)
	}
	if err := h.Teardown(ctx, spec.ID); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			if err := h.Teardown(context.WithoutCancel(ctx), spec.ID); err != nil {
				h.log.Warn("removing a failed restore", "restore", spec.ID, "err", err)
			}
		}
	}()
	dir := h.restoreDir(spec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var disks []string
	for _, d := range spec.Disks {
		out := filepath.Join(dir, d.Name+".vhdx")
		if spec.Progress != nil {
			spec.Progress(hypervisor.Progress{Step: "converting disk " + d.Name + " to VHDX"})
		}
		if err := storage.Convert(ctx, storage.ConvertSpec{Chain: d.Chain, Out: out, Format: kinds.ImageVHDX, QemuImg: h.cfg.QEMUImg, Size: d.Size}); err != nil {
			return fmt.Errorf("convert disk %s to VHDX: %w", d.Name, err)
		}
		disks = append(disks, out)
	}
	params := map[string]any{"Name": restoreName(spec.ID), "Generation": generation(spec.Firmware), "MemoryBytes": spec.MemoryMiB << 20,
		"CPUs": spec.VCPUs, "Notes": hypervisor.RestoreNote(spec.ID, h.cfg.HostID), "Dir": dir, "Disks": disks}
	if err := call(ctx, h.r, "new-vm", cmdNewVM, params, nil); err != nil {
		return err
	}
	ok = true
	return nil
}

// Boot implements hypervisor.Restorer.
func (h *Host) Boot(ctx context.Context, id string) error {
	return call(ctx, h.r, "start-vm", cmdStartVM, map[string]any{"Name": restoreName(id)}, nil)
}

// Teardown implements hypervisor.Restorer: the VM off and removed, its
// directory (the converted disks) removed.
func (h *Host) Teardown(ctx context.Context, id string) error {
	return call(ctx, h.r, "remove-vm", cmdRemoveVM, map[string]any{"Name": restoreName(id), "Dir": h.restoreDir(id)}, nil)
}

// Owned implements hypervisor.Restorer: the VMs whose notes are this
// host's restores'.
func (h *Host) Owned(ctx context.Context) ([]hypervisor.Owned, error) {
	all, err := vms(ctx, h.r)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Owned
	for _, vm := range all {
		if id, ours := hypervisor.ParseRestoreNote(vm.Notes, h.cfg.HostID); ours {
			out = append(out, hypervisor.Owned{ID: id, VM: true, Running: vm.State == "Running"})
		}
	}
	return out, nil
}

// VMState implements hypervisor.VMStater: Hyper-V's state of the VM (the
// integration services' heartbeat is not asked yet).
func (h *Host) VMState(ctx context.Context, id string) (hypervisor.VMState, error) {
	all, err := vms(ctx, h.r)
	if err != nil {
		return hypervisor.VMState{}, err
	}
	for _, vm := range all {
		if got, ours := hypervisor.ParseRestoreNote(vm.Notes, h.cfg.HostID); ours && got == id {
			return hypervisor.VMState{Running: vm.State == "Running"}, nil
		}
	}
	return hypervisor.VMState{}, nil
}
