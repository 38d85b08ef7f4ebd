package kvm

import (
	"context"

	"github.com/google/uuid"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/vmspec"
)

// Inventory implements hypervisor.Snapshotter: every domain on libvirtd
// that is not a Restored restore domain (those carry Restored's metadata,
// whichever agent made them).
func (h *Host) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	return h.drv.Inventory(ctx)
}

// Inventory lists the domains that are not Restored's restore domains.
func (d *Driver) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	all, err := d.allDomains(ctx)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Domain
	for _, l := range all {
		if _, restore := vmspec.ParseMetadata(l.spec); restore {
			continue // a restore VM: never a guest
		}
		running, gone, err := d.running(ctx, l.dom)
		if err != nil {
			return nil, err
		}
		if gone {
			continue
		}
		x := hypervisor.Domain{UUID: uuid.UUID(l.dom.UUID).String(), Name: l.dom.Name, Running: running, OwnerTenant: vmspec.ParseOwner(l.spec)}
		if l.spec.Devices != nil {
			for _, disk := range l.spec.Devices.Disks {
				if disk.Device == "disk" && disk.Target != nil {
					x.Disks = append(x.Disks, disk.Target.Dev)
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}
