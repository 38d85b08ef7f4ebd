package vmware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/storage"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Restores on VMware: a recovery point's disks become flat VMDKs on the
// host's datastore (converted to raw by qemu-img from the explicit chain,
// uploaded through the datastore file service with their descriptors), a
// VM is made of them with the devices the recovery point's OS boots with,
// and powered on. The VM and its directory are named after the restore;
// its annotation says whose it is, so the host finds its own again.

// restoreName is the VM (and datastore directory) of a restore.
func restoreName(id string) string { return "restored-" + id }

// Prepare implements hypervisor.Restorer: the disks uploaded and the VM
// made, not powered on. A failure removes what it made.
func (h *Host) Prepare(ctx context.Context, spec hypervisor.RestoreSpec) error {
	if err := h.Capabilities().Need(hypervisor.Restores, "this VMware host (give the agent --datastore)"); err != nil {
		return err
	}
	if spec.Network == kinds.Isolated {
		return fmt.Errorf("a restore onto VMware cannot be ISOLATED yet (it needs a portgroup of its own): ask for NONE, or BRIDGED to a portgroup the host offers (--bridge)")
	}
	if err := h.Teardown(ctx, spec.ID); err != nil { // what an interrupted attempt left
		return err
	}
	rv := revert.New()
	defer rv.Fail()
	rv.Add(func() {
		if err := h.Teardown(context.WithoutCancel(ctx), spec.ID); err != nil {
			h.log.Warn("removing a failed restore's VM and files", "restore", spec.ID, "err", err)
		}
	})
	var disks []uploaded
	for _, d := range spec.Disks {
		u, err := h.uploadDisk(ctx, spec, d)
		if err != nil {
			return err
		}
		disks = append(disks, u)
	}
	if err := h.createVM(ctx, spec, disks); err != nil {
		return err
	}
	rv.Success()
	return nil
}

func (h *Host) workDir(id string) string { return filepath.Join(h.cfg.WorkDir, "restores", id) }

// uploaded is a disk on the datastore: its descriptor and size.
type uploaded struct {
	file string
	size int64
}

// uploadDisk converts one disk to raw in the work dir and uploads it as a
// flat VMDK (descriptor and extent), reporting the upload's progress.
func (h *Host) uploadDisk(ctx context.Context, spec hypervisor.RestoreSpec, d hypervisor.Disk) (uploaded, error) {
	progress := func(p hypervisor.Progress) {
		if spec.Progress != nil {
			spec.Progress(p)
		}
	}
	dir := h.workDir(spec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return uploaded{}, err
	}
	raw := filepath.Join(dir, d.Name+".raw")
	progress(hypervisor.Progress{Step: "converting disk " + d.Name + " to a flat VMDK"})
	if err := storage.Convert(ctx, storage.ConvertSpec{Chain: d.Chain, Out: raw, Format: kinds.ImageRaw, Size: d.Size}); err != nil {
		return uploaded{}, fmt.Errorf("convert disk %s: %w", d.Name, err)
	}
	defer os.Remove(raw)
	f, err := os.Open(raw)
	if err != nil {
		return uploaded{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return uploaded{}, err
	}
	size := st.Size()
	if size%512 != 0 {
		return uploaded{}, fmt.Errorf("disk %s has %d bytes, not a whole number of sectors", d.Name, size)
	}
	base := fmt.Sprintf("[%s] %s/%s", h.cfg.Datastore, restoreName(spec.ID), d.Name)
	flat, err := h.d.File(h.dcPath, base+"-flat.vmdk")
	if err != nil {
		return uploaded{}, err
	}
	step := fmt.Sprintf("uploading disk %s to %s", d.Name, h.cfg.Datastore)
	counted := &countingReader{r: f, total: size, report: func(done int64) { progress(hypervisor.Progress{Step: step, Done: done, Total: size}) }}
	if err := flat.Upload(ctx, counted, size); err != nil {
		return uploaded{}, err
	}
	progress(hypervisor.Progress{Step: step, Done: size, Total: size})
	desc, err := h.d.File(h.dcPath, base+".vmdk")
	if err != nil {
		return uploaded{}, err
	}
	text := FlatDescriptor(d.Name+"-flat.vmdk", size)
	if err := desc.Upload(ctx, strings.NewReader(text), int64(len(text))); err != nil {
		return uploaded{}, err
	}
	return uploaded{file: desc.Name, size: size}, nil
}

// countingReader reports the bytes read, at most every second.
type countingReader struct {
	r           io.Reader
	done, total int64
	last        time.Time
	report      func(done int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	if time.Since(c.last) >= time.Second {
		c.last = time.Now()
		c.report(c.done)
	}
	return n, err
}

// FlatDescriptor is the VMDK descriptor of a flat disk of size bytes whose
// data is the file extent (in the same directory).
func FlatDescriptor(extent string, size int64) string {
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW %d VMFS "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "13"
`, size/512, extent)
}

// Upload PUTs size bytes from r as the file (replacing it).
func (f *DatastoreFile) Upload(ctx context.Context, r io.Reader, size int64) error {
	p := soap.DefaultUpload
	p.ContentLength = size
	if err := f.d.c.Client.Upload(ctx, r, f.url, &p); err != nil {
		return fmt.Errorf("upload %s: %w", f.Name, err)
	}
	return nil
}

// guestID is the vSphere guest OS of a recovery point's family.
func guestID(os kinds.OSFamily) string {
	switch os {
	case kinds.Linux:
		return string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
	case kinds.Windows:
		return string(types.VirtualMachineGuestOsIdentifierWindows9Server64Guest)
	}
	return string(types.VirtualMachineGuestOsIdentifierOtherGuest64)
}

// controllerKind is the disk controller the OS boots from: paravirtual
// SCSI when it has the driver, LSI Logic SAS (which Windows and most
// installers know) otherwise.
func controllerKind(os kinds.OSFamily) string {
	if os.Paravirtual() {
		return "pvscsi"
	}
	return "lsilogic-sas"
}

// createVM makes the restore's VM of the uploaded disks.
func (h *Host) createVM(ctx context.Context, spec hypervisor.RestoreSpec, disks []uploaded) error {
	var devices object.VirtualDeviceList
	ctl, err := devices.CreateSCSIController(controllerKind(spec.OS))
	if err != nil {
		return err
	}
	devices = append(devices, ctl)
	for _, u := range disks {
		disk := devices.CreateDisk(ctl.(types.BaseVirtualController), h.datastore, u.file)
		disk.CapacityInBytes, disk.CapacityInKB = u.size, u.size/1024
		devices = append(devices, disk)
	}
	if spec.Network == kinds.Bridged {
		nic, err := h.nic(ctx, spec)
		if err != nil {
			return err
		}
		devices = append(devices, nic)
	}
	firmware := string(types.GuestOsDescriptorFirmwareTypeBios)
	if spec.Firmware == kinds.UEFI {
		firmware = string(types.GuestOsDescriptorFirmwareTypeEfi)
	}
	cfg := types.VirtualMachineConfigSpec{
		Name: restoreName(spec.ID), Annotation: hypervisor.RestoreNote(spec.ID, h.cfg.HostID), GuestId: guestID(spec.OS), Firmware: firmware,
		NumCPUs: int32(spec.VCPUs), MemoryMB: spec.MemoryMiB,
		Files: &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s] %s", h.cfg.Datastore, restoreName(spec.ID))},
	}
	if cfg.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd); err != nil {
		return err
	}
	for _, ch := range cfg.DeviceChange {
		if _, ok := ch.GetVirtualDeviceConfigSpec().Device.(*types.VirtualDisk); ok {
			ch.GetVirtualDeviceConfigSpec().FileOperation = "" // attach the uploaded disk, never make one
		}
	}
	task, err := h.folder.CreateVM(ctx, cfg, h.pool, nil)
	if err != nil {
		return fmt.Errorf("create the VM: %w", err)
	}
	if _, err := task.WaitForResult(ctx); err != nil {
		return fmt.Errorf("create the VM: %w", err)
	}
	return nil
}

// nicKind is the network card the OS boots with: vmxnet3 when it has the
// driver, e1000e (which Windows and most installers know) otherwise.
func nicKind(os kinds.OSFamily) string {
	if os.Paravirtual() {
		return "vmxnet3"
	}
	return "e1000e"
}

// nic is a BRIDGED restore's network card on the portgroup spec.Bridge
// (what the host offers its tenant with --bridge), connected at power on
// unless the restore boots with its link down (the identity guard).
func (h *Host) nic(ctx context.Context, spec hypervisor.RestoreSpec) (types.BaseVirtualDevice, error) {
	f := find.NewFinder(h.d.c.Client)
	f.SetDatacenter(h.dc)
	net, err := f.Network(ctx, spec.Bridge)
	if err != nil {
		return nil, fmt.Errorf("portgroup %q: %w", spec.Bridge, err)
	}
	backing, err := net.EthernetCardBackingInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("portgroup %q: %w", spec.Bridge, err)
	}
	card, err := object.EthernetCardTypes().CreateEthernetCard(nicKind(spec.OS), backing)
	if err != nil {
		return nil, err
	}
	card.GetVirtualDevice().Connectable = &types.VirtualDeviceConnectInfo{StartConnected: !spec.LinkDown, Connected: !spec.LinkDown, AllowGuestControl: true}
	return card, nil
}

// LinkUp implements hypervisor.Restorer: the restore VM's network cards
// connected (and connected at the next power on). Already up is not an
// error.
func (h *Host) LinkUp(ctx context.Context, id string) error {
	vm, _, err := h.restoreVM(ctx, id)
	if err != nil {
		return err
	}
	if vm == nil {
		return fmt.Errorf("restore %s has no VM", id)
	}
	devices, err := vm.Device(ctx)
	if err != nil {
		return err
	}
	for _, nic := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		c := nic.GetVirtualDevice()
		if c.Connectable != nil && c.Connectable.Connected && c.Connectable.StartConnected {
			continue
		}
		c.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, Connected: true, AllowGuestControl: true}
		if err := vm.EditDevice(ctx, nic); err != nil {
			return fmt.Errorf("connect the network card of restore %s: %w", id, err)
		}
	}
	return nil
}

// restoreVM finds a restore's VM, nil when there is none.
func (h *Host) restoreVM(ctx context.Context, id string) (*object.VirtualMachine, bool, error) {
	vms, err := h.vms(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, vm := range vms {
		if got, ours := hypervisor.ParseRestoreNote(vm.Config.Annotation, h.cfg.HostID); ours && got == id {
			return object.NewVirtualMachine(h.d.c.Client, vm.Self), vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn, nil
		}
	}
	return nil, false, nil
}

// Boot implements hypervisor.Restorer: power on.
func (h *Host) Boot(ctx context.Context, id string) error {
	vm, _, err := h.restoreVM(ctx, id)
	if err != nil {
		return err
	}
	if vm == nil {
		return fmt.Errorf("restore %s has no VM to power on", id)
	}
	task, err := vm.PowerOn(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("power on the VM of restore %s: %w", id, err)
	}
	return nil
}

// Teardown implements hypervisor.Restorer: the VM powered off and
// destroyed (with its disks), its datastore directory and work files
// removed. Nothing left is not an error.
func (h *Host) Teardown(ctx context.Context, id string) error {
	vm, running, err := h.restoreVM(ctx, id)
	if err != nil {
		return err
	}
	if vm != nil {
		if running {
			if task, err := vm.PowerOff(ctx); err == nil {
				_ = task.Wait(ctx)
			}
		}
		task, err := vm.Destroy(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("destroy the VM of restore %s: %w", id, err)
		}
	}
	if h.cfg.Datastore != "" {
		dir := fmt.Sprintf("[%s] %s", h.cfg.Datastore, restoreName(id))
		task, err := object.NewFileManager(h.d.c.Client).DeleteDatastoreFile(ctx, dir, h.dc)
		if err == nil {
			err = task.Wait(ctx)
		}
		var fault types.HasFault
		if err != nil && !(errors.As(err, &fault) && isNotFound(fault.Fault())) && !strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	return os.RemoveAll(h.workDir(id))
}

func isNotFound(f types.BaseMethodFault) bool {
	_, ok := f.(*types.FileNotFound)
	return ok
}

// Owned implements hypervisor.Restorer: the restore VMs of this host.
func (h *Host) Owned(ctx context.Context) ([]hypervisor.Owned, error) {
	vms, err := h.vms(ctx)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Owned
	for _, vm := range vms {
		if id, ours := hypervisor.ParseRestoreNote(vm.Config.Annotation, h.cfg.HostID); ours {
			out = append(out, hypervisor.Owned{ID: id, VM: true, Running: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn})
		}
	}
	return out, nil
}

// VMState implements hypervisor.VMStater: what vSphere says of the
// restore's VM (power state, VMware Tools).
func (h *Host) VMState(ctx context.Context, id string) (hypervisor.VMState, error) {
	vm, running, err := h.restoreVM(ctx, id)
	if err != nil || vm == nil {
		return hypervisor.VMState{}, err
	}
	var guest mo.VirtualMachine
	st := hypervisor.VMState{Running: running}
	if err := vm.Properties(ctx, vm.Reference(), []string{"guest"}, &guest); err == nil && guest.Guest != nil {
		switch {
		case guest.Guest.ToolsStatus == types.VirtualMachineToolsStatusToolsNotInstalled:
			st.Tools = hypervisor.ToolsAbsent
		case guest.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning):
			st.Tools = hypervisor.ToolsRunning
		default:
			st.Tools = hypervisor.ToolsNotRunning
		}
	}
	return st, nil
}
