package vmware

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Driver talks to one vCenter (or ESXi host).
type Driver struct {
	c *govmomi.Client
}

// Connect logs in to the SDK URL (https://host/sdk) with the user and
// password in the URL. insecure skips TLS verification (vcsim, labs).
func Connect(ctx context.Context, sdk string, insecure bool) (*Driver, error) {
	u, err := url.Parse(sdk)
	if err != nil {
		return nil, fmt.Errorf("vcenter URL %q: %w", sdk, err)
	}
	c, err := govmomi.NewClient(ctx, u, insecure)
	if err != nil {
		return nil, fmt.Errorf("log in to %s: %w", u.Host, err)
	}
	return &Driver{c: c}, nil
}

// Client is the underlying govmomi client (its SOAP transport can be
// wrapped, e.g. by tests).
func (d *Driver) Client() *govmomi.Client { return d.c }

// Logout ends the session.
func (d *Driver) Logout(ctx context.Context) error { return d.c.Logout(ctx) }

// ErrNotFound says the VM or snapshot is not in the vCenter.
var ErrNotFound = errors.New("not found in the vCenter")

func (d *Driver) vm(ctx context.Context, moref string) (*object.VirtualMachine, mo.VirtualMachine, error) {
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: moref}
	var props mo.VirtualMachine
	err := property.DefaultCollector(d.c.Client).RetrieveOne(ctx, ref, []string{"name", "config", "snapshot", "runtime.powerState"}, &props)
	if err != nil {
		var fault types.HasFault
		if errors.As(err, &fault) {
			if _, ok := fault.Fault().(*types.ManagedObjectNotFound); ok {
				return nil, props, fmt.Errorf("virtual machine %s: %w", moref, ErrNotFound)
			}
		}
		return nil, props, fmt.Errorf("virtual machine %s: %w", moref, err)
	}
	return object.NewVirtualMachine(d.c.Client, ref), props, nil
}

// Disk is one virtual disk of a VM or snapshot.
type Disk struct {
	Key      int32
	Label    string
	Capacity int64
	// ChangeID is the disk's change id at that moment (CBT): the next
	// incremental asks what changed since it.
	ChangeID string
}

// EnableChangeTracking turns on Changed Block Tracking. It takes effect
// for the disks at the VM's next snapshot (or power cycle). Already on is
// not an error.
func (d *Driver) EnableChangeTracking(ctx context.Context, moref string) (bool, error) {
	vm, props, err := d.vm(ctx, moref)
	if err != nil {
		return false, err
	}
	if props.Config != nil && props.Config.ChangeTrackingEnabled != nil && *props.Config.ChangeTrackingEnabled {
		return false, nil
	}
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(true)})
	if err != nil {
		return false, fmt.Errorf("enable change tracking on %s: %w", moref, err)
	}
	if err := task.Wait(ctx); err != nil {
		return false, fmt.Errorf("enable change tracking on %s: %w", moref, err)
	}
	return true, nil
}

// ChangeTracking says whether CBT is on.
func (d *Driver) ChangeTracking(ctx context.Context, moref string) (bool, error) {
	_, props, err := d.vm(ctx, moref)
	if err != nil {
		return false, err
	}
	return props.Config != nil && props.Config.ChangeTrackingEnabled != nil && *props.Config.ChangeTrackingEnabled, nil
}

func disksOf(devices []types.BaseVirtualDevice) []Disk {
	var out []Disk
	for _, dev := range devices {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		disk := Disk{Key: vd.Key, Capacity: vd.CapacityInBytes}
		if info := vd.DeviceInfo.GetDescription(); info != nil {
			disk.Label = info.Label
		}
		switch b := vd.Backing.(type) {
		case *types.VirtualDiskFlatVer2BackingInfo:
			disk.ChangeID = b.ChangeId
		case *types.VirtualDiskSparseVer2BackingInfo:
			disk.ChangeID = b.ChangeId
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			disk.ChangeID = b.ChangeId
		}
		out = append(out, disk)
	}
	return out
}
