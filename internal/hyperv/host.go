package hyperv

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/restored/restored/internal/exportset"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
)

// Config is one Hyper-V host, driven by an agent running on it.
type Config struct {
	HostID string
	// WorkDir holds the snapshots' NBD sockets and the reference points'
	// RCT ids of completed backups.
	WorkDir string
	// VMDir is where restores' VMs and disks go (default
	// <work-dir>/vms).
	VMDir string
	// QEMUImg converts recovery points to VHDX (qemu-img.exe on Windows).
	QEMUImg string
	Runner  Runner
	Log     *slog.Logger
}

// Capabilities is what the Hyper-V driver does: snapshots for backup jobs
// (production checkpoints, quiesced through the guest's integration
// services, with Resilient Change Tracking) and restores.
const Capabilities = hypervisor.Set(hypervisor.Snapshots | hypervisor.Quiesce | hypervisor.ChangedBlocks | hypervisor.Restores)

// Host is a Hyper-V host as the agent's hypervisor.
type Host struct {
	cfg Config
	r   Runner
	log *slog.Logger

	hypervisor.NoObserver

	serving exportset.Registry[*served]
}

// Open checks that the host answers (Get-VMHost) and returns it.
func Open(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Runner == nil {
		cfg.Runner = PowerShell{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.VMDir == "" {
		cfg.VMDir = cfg.WorkDir + `\vms`
	}
	if cfg.QEMUImg == "" {
		cfg.QEMUImg = "qemu-img"
	}
	h := &Host{cfg: cfg, r: cfg.Runner, log: cfg.Log, NoObserver: hypervisor.NoObserver{Driver: "Hyper-V"}}
	if _, err := h.Size(ctx); err != nil {
		return nil, fmt.Errorf("the Hyper-V host does not answer (is the Hyper-V PowerShell module installed, and the agent an administrator?): %w", err)
	}
	return h, nil
}

// Kind implements hypervisor.Driver.
func (h *Host) Kind() kinds.Hypervisor { return kinds.HyperV }

// Capabilities implements hypervisor.Driver.
func (h *Host) Capabilities() hypervisor.Set { return Capabilities }

// Accelerator is what the host reports as its accelerator.
func (h *Host) Accelerator() string { return "hyper-v" }

// Size implements hypervisor.Driver: the host's logical processors and
// memory.
func (h *Host) Size(ctx context.Context) (hypervisor.Size, error) {
	var hi hostInfo
	if err := call(ctx, h.r, "host", cmdHost, struct{}{}, &hi); err != nil {
		return hypervisor.Size{}, err
	}
	return hypervisor.Size{CPUs: hi.LogicalProcessorCount, MemoryMiB: hi.MemoryCapacity >> 20}, nil
}

// Close implements hypervisor.Driver.
func (h *Host) Close() {
	h.serving.StopAll()
}

// diskName is Restored's name of a disk: its controller and location
// (scsi0-1, ide0-0).
func diskName(d diskInfo) string {
	return fmt.Sprintf("%s%d-%d", strings.ToLower(d.ControllerType), d.ControllerNumber, d.ControllerLocation)
}

// Inventory implements hypervisor.Snapshotter: the host's VMs by VM id.
func (h *Host) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	all, err := vms(ctx, h.r)
	if err != nil {
		return nil, err
	}
	out := make([]hypervisor.Domain, 0, len(all))
	for _, vm := range all {
		if _, ours := hypervisor.ParseRestoreNote(vm.Notes, h.cfg.HostID); ours {
			continue // a restore VM is never a guest
		}
		d := hypervisor.Domain{UUID: strings.ToLower(vm.VMId), Name: vm.Name, Running: vm.State == "Running"}
		for _, disk := range vm.Disks {
			d.Disks = append(d.Disks, diskName(disk))
		}
		out = append(out, d)
	}
	return out, nil
}

// vm finds a guest's VM by id, else by a name no other VM has.
func (h *Host) vm(ctx context.Context, guest, uuid string) (vmInfo, error) {
	all, err := vms(ctx, h.r)
	if err != nil {
		return vmInfo{}, err
	}
	var found []vmInfo
	for _, vm := range all {
		switch {
		case uuid != "" && strings.EqualFold(vm.VMId, uuid):
			return vm, nil
		case uuid == "" && (vm.Name == guest || strings.EqualFold(vm.VMId, guest)):
			found = append(found, vm)
		}
	}
	switch len(found) {
	case 0:
		return vmInfo{}, fmt.Errorf("guest %s: %w", cmp.Or(uuid, guest), ErrNotFound)
	case 1:
		return found[0], nil
	}
	return vmInfo{}, fmt.Errorf("guest %s: %d VMs have that name: register the guest by VM id", guest, len(found))
}

// LinkUp implements hypervisor.Restorer: Hyper-V restores have no NIC yet.
func (h *Host) LinkUp(context.Context, string) error {
	return fmt.Errorf("a Hyper-V restore has no network to bring up: %w", hypervisor.ErrUnsupported)
}

var _ interface {
	hypervisor.Driver
	hypervisor.Restorer
	hypervisor.Observer
	hypervisor.Snapshotter
	hypervisor.VMStater
} = (*Host)(nil)
