package vmware

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Driver talks to one vCenter (or ESXi host).
type Driver struct {
	c *govmomi.Client
}

// Login says how to reach and log in to a vCenter.
type Login struct {
	// URL is the SDK URL (https://vcenter.example.com/sdk); a user and
	// password in it are used when User is empty.
	URL string
	// User and Password log in.
	User, Password string
	// CACert is a PEM file of the CAs the vCenter's certificate must chain
	// to (empty: the system's); Insecure skips verification (labs only).
	CACert   string
	Insecure bool
}

// Connect logs in to the vCenter and keeps the session alive.
func Connect(ctx context.Context, l Login) (*Driver, error) {
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("vcenter URL %q: want https://HOST/sdk", l.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	user := u.User
	u.User = nil
	if l.User != "" {
		user = url.UserPassword(l.User, l.Password)
	}
	if user == nil {
		return nil, fmt.Errorf("vcenter %s: no user to log in as (give a credentials file)", u.Host)
	}
	sc := soap.NewClient(u, l.Insecure)
	if l.CACert != "" {
		if err := sc.SetRootCAs(l.CACert); err != nil {
			return nil, fmt.Errorf("vcenter CA %s: %w", l.CACert, err)
		}
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Host, err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	// An idle session ends after 30 minutes: touch it every 5.
	vc.RoundTripper = keepalive.NewHandlerSOAP(vc.RoundTripper, 5*time.Minute, nil)
	if err := c.Login(ctx, user); err != nil {
		return nil, fmt.Errorf("log in to %s as %s: %w", u.Host, user.Username(), err)
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
	Key int32
	// Name is Restored's name for it: its controller and unit (scsi0-1).
	Name     string
	Label    string
	Capacity int64
	// File is its backing file as a datastore path ("[ds] vm/vm.vmdk");
	// Parent the file it is a delta on, if any.
	File, Parent string
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

// controllerName is a disk controller's kind and bus (scsi0), by its key.
func controllerNames(devices []types.BaseVirtualDevice) map[int32]string {
	out := map[int32]string{}
	for _, dev := range devices {
		var kind string
		switch dev.(type) {
		case types.BaseVirtualSCSIController:
			kind = "scsi"
		case *types.VirtualAHCIController, *types.VirtualSATAController:
			kind = "sata"
		case *types.VirtualIDEController:
			kind = "ide"
		case *types.VirtualNVMEController:
			kind = "nvme"
		default:
			continue
		}
		if c, ok := dev.(types.BaseVirtualController); ok {
			vc := c.GetVirtualController()
			out[vc.Key] = fmt.Sprintf("%s%d", kind, vc.BusNumber)
		}
	}
	return out
}

func disksOf(devices []types.BaseVirtualDevice) []Disk {
	controllers := controllerNames(devices)
	var out []Disk
	for _, dev := range devices {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		disk := Disk{Key: vd.Key, Capacity: vd.CapacityInBytes, Name: fmt.Sprintf("disk%d", vd.Key)}
		if c, ok := controllers[vd.ControllerKey]; ok && vd.UnitNumber != nil {
			disk.Name = fmt.Sprintf("%s-%d", c, *vd.UnitNumber)
		}
		if disk.Capacity == 0 {
			disk.Capacity = vd.CapacityInKB * 1024
		}
		if info := vd.DeviceInfo.GetDescription(); info != nil {
			disk.Label = info.Label
		}
		switch b := vd.Backing.(type) {
		case *types.VirtualDiskFlatVer2BackingInfo:
			disk.File, disk.ChangeID = b.FileName, b.ChangeId
			if b.Parent != nil {
				disk.Parent = b.Parent.FileName
			}
		case *types.VirtualDiskSparseVer2BackingInfo:
			disk.File, disk.ChangeID = b.FileName, b.ChangeId
			if b.Parent != nil {
				disk.Parent = b.Parent.FileName
			}
		case *types.VirtualDiskSeSparseBackingInfo:
			disk.File, disk.ChangeID = b.FileName, b.ChangeId
			if b.Parent != nil {
				disk.Parent = b.Parent.FileName
			}
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			disk.File, disk.ChangeID = b.FileName, b.ChangeId
		}
		out = append(out, disk)
	}
	return out
}
