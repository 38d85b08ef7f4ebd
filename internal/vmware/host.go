package vmware

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/restored/restored/internal/exportset"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Config is one Restored host on VMware: a vCenter cluster (or a
// standalone ESXi host's compute resource).
type Config struct {
	Login
	// Credentials is a JSON file {"username": …, "password": …} (kept out
	// of the command line and the environment).
	Credentials string
	// Datacenter, Cluster and ResourcePool say which compute resource the
	// host is (empty: the vCenter's only one); Datastore where restores'
	// files go.
	Datacenter, Cluster, ResourcePool, Datastore string
	// HostID is the Restored host id: snapshots say whose they are with it.
	HostID string
	// WorkDir holds the NBD sockets of the snapshots being served.
	WorkDir string
	Log     *slog.Logger
}

// Capabilities is what the VMware driver does: snapshots for backup jobs,
// quiesced through VMware Tools, with changed blocks (CBT); and restores
// when the host has a datastore for them.
const Capabilities = hypervisor.Set(hypervisor.Snapshots | hypervisor.Quiesce | hypervisor.ChangedBlocks)

// Host is a vCenter cluster as the agent's hypervisor.
type Host struct {
	cfg     Config
	d       *Driver
	dc      *object.Datacenter
	dcPath  string
	cluster types.ManagedObjectReference
	// pool and folder are where restore VMs go, datastore their files.
	pool      *object.ResourcePool
	folder    *object.Folder
	datastore types.ManagedObjectReference
	log       *slog.Logger

	hypervisor.NoObserver

	serving exportset.Registry[*served]
}

// ReadCredentials reads a credentials file.
func ReadCredentials(path string) (user, password string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("--credentials: %w", err)
	}
	var c struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", "", fmt.Errorf("--credentials %s: want {\"username\": …, \"password\": …}: %w", path, err)
	}
	if c.Username == "" {
		return "", "", fmt.Errorf("--credentials %s: no username", path)
	}
	return c.Username, c.Password, nil
}

// maxSocketPath is the longest unix socket path Linux binds (sun_path).
const maxSocketPath = 107

// Open logs in and finds the cluster.
func Open(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Credentials != "" {
		u, p, err := ReadCredentials(cfg.Credentials)
		if err != nil {
			return nil, err
		}
		cfg.User, cfg.Password = u, p
	}
	probe := (&Host{cfg: cfg}).socket("01a23235-d3fc-737e-8ed8-e14f59bc74ca")
	if len(probe) > maxSocketPath {
		return nil, fmt.Errorf("--work-dir %s is too deep for the snapshots' unix sockets (%d bytes of at most %d): use a shorter path", cfg.WorkDir, len(probe), maxSocketPath)
	}
	d, err := Connect(ctx, cfg.Login)
	if err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, d: d, log: cfg.Log, NoObserver: hypervisor.NoObserver{Driver: "VMware"}}
	if err := h.find(ctx); err != nil {
		_ = d.Logout(context.WithoutCancel(ctx))
		return nil, err
	}
	return h, nil
}

// find resolves the datacenter, the compute resource and the datastore.
func (h *Host) find(ctx context.Context) error {
	f := find.NewFinder(h.d.c.Client)
	dc, err := f.DatacenterOrDefault(ctx, h.cfg.Datacenter)
	if err != nil {
		return fmt.Errorf("--datacenter %q: %w", h.cfg.Datacenter, err)
	}
	f.SetDatacenter(dc)
	h.dc, h.dcPath = dc, strings.TrimPrefix(dc.InventoryPath, "/")
	switch {
	case h.cfg.ResourcePool != "":
		rp, err := f.ResourcePool(ctx, h.cfg.ResourcePool)
		if err != nil {
			return fmt.Errorf("--resource-pool %q: %w", h.cfg.ResourcePool, err)
		}
		owner, err := rp.Owner(ctx)
		if err != nil {
			return fmt.Errorf("--resource-pool %q: its cluster: %w", h.cfg.ResourcePool, err)
		}
		h.cluster, h.pool = owner.Reference(), rp
	default:
		cr, err := f.ComputeResourceOrDefault(ctx, h.cfg.Cluster)
		if err != nil {
			return fmt.Errorf("--cluster %q: %w (name one of the datacenter's clusters)", h.cfg.Cluster, err)
		}
		h.cluster = cr.Reference()
		if h.pool, err = cr.ResourcePool(ctx); err != nil {
			return fmt.Errorf("the cluster's resource pool: %w", err)
		}
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return fmt.Errorf("the datacenter's folders: %w", err)
	}
	h.folder = folders.VmFolder
	if h.cfg.Datastore != "" {
		ds, err := f.Datastore(ctx, h.cfg.Datastore)
		if err != nil {
			return fmt.Errorf("--datastore %q: %w", h.cfg.Datastore, err)
		}
		h.datastore = ds.Reference()
	}
	h.log.Info("vCenter cluster found", "datacenter", dc.InventoryPath, "compute_resource", h.cluster.Value)
	return nil
}

// Kind implements hypervisor.Driver.
func (h *Host) Kind() kinds.Hypervisor { return kinds.VMware }

// Capabilities implements hypervisor.Driver.
func (h *Host) Capabilities() hypervisor.Set {
	if h.cfg.Datastore != "" {
		return Capabilities | hypervisor.Set(hypervisor.Restores)
	}
	return Capabilities
}

// Accelerator is what the host reports as its accelerator.
func (h *Host) Accelerator() string { return "vsphere" }

// Size implements hypervisor.Driver: the cluster's CPU threads and memory.
func (h *Host) Size(ctx context.Context) (hypervisor.Size, error) {
	var cr mo.ComputeResource
	if err := property.DefaultCollector(h.d.c.Client).RetrieveOne(ctx, h.cluster, []string{"summary"}, &cr); err != nil {
		return hypervisor.Size{}, fmt.Errorf("the cluster's size: %w", err)
	}
	s := cr.Summary.GetComputeResourceSummary()
	if s == nil {
		return hypervisor.Size{}, errors.New("vSphere reported no summary of the cluster")
	}
	return hypervisor.Size{CPUs: int32(s.NumCpuThreads), MemoryMiB: s.TotalMemory >> 20}, nil
}

// Close implements hypervisor.Driver: it stops serving and logs out.
func (h *Host) Close() {
	h.serving.StopAll()
	_ = h.d.Logout(context.Background())
}

// vmProps are the VM properties the host reads.
var vmProps = []string{"name", "config.instanceUuid", "config.template", "config.annotation", "config.hardware.device", "runtime.powerState", "runtime.host", "snapshot"}

// vms lists the cluster's VMs (templates excluded), restore VMs included.
func (h *Host) vms(ctx context.Context) ([]mo.VirtualMachine, error) {
	c := h.d.c.Client
	var cr mo.ComputeResource
	if err := property.DefaultCollector(c).RetrieveOne(ctx, h.cluster, []string{"host"}, &cr); err != nil {
		return nil, fmt.Errorf("the cluster's hosts: %w", err)
	}
	inCluster := map[string]bool{}
	for _, ref := range cr.Host {
		inCluster[ref.Value] = true
	}
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var all []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, vmProps, &all); err != nil {
		return nil, fmt.Errorf("the vCenter's VMs: %w", err)
	}
	var out []mo.VirtualMachine
	for _, vm := range all {
		if vm.Runtime.Host == nil || !inCluster[vm.Runtime.Host.Value] || vm.Config == nil || vm.Config.Template {
			continue
		}
		out = append(out, vm)
	}
	return out, nil
}

// Inventory implements hypervisor.Snapshotter: the cluster's VMs by
// instance UUID (what makes a VM the same guest), name and moref.
func (h *Host) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	vms, err := h.vms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]hypervisor.Domain, 0, len(vms))
	for _, vm := range vms {
		if _, ours := hypervisor.ParseRestoreNote(vm.Config.Annotation, h.cfg.HostID); ours {
			continue // a restore VM is never a guest
		}
		d := hypervisor.Domain{UUID: vm.Config.InstanceUuid, Name: vm.Name, Moref: vm.Self.Value,
			Running: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn}
		for _, disk := range disksOf(vm.Config.Hardware.Device) {
			d.Disks = append(d.Disks, disk.Name)
		}
		out = append(out, d)
	}
	return out, nil
}

// vm finds a guest's VM in the cluster: by instance UUID when known, else
// by moref or name (a name two VMs share is refused).
func (h *Host) vm(ctx context.Context, guest, uuid string) (mo.VirtualMachine, error) {
	vms, err := h.vms(ctx)
	if err != nil {
		return mo.VirtualMachine{}, err
	}
	var found []mo.VirtualMachine
	for _, vm := range vms {
		switch {
		case uuid != "" && strings.EqualFold(vm.Config.InstanceUuid, uuid):
			return vm, nil
		case uuid == "" && (vm.Self.Value == guest || vm.Name == guest || strings.EqualFold(vm.Config.InstanceUuid, guest)):
			found = append(found, vm)
		}
	}
	switch len(found) {
	case 0:
		return mo.VirtualMachine{}, fmt.Errorf("guest %s: %w (cluster %s)", cmp.Or(uuid, guest), ErrNotFound, h.cluster.Value)
	case 1:
		return found[0], nil
	}
	return mo.VirtualMachine{}, fmt.Errorf("guest %s: %d VMs of the cluster have that name: register the guest by instance UUID", guest, len(found))
}

var _ interface {
	hypervisor.Driver
	hypervisor.Restorer
	hypervisor.Observer
	hypervisor.Snapshotter
} = (*Host)(nil)
