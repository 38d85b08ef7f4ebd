package kvm

import (
	"context"
	"fmt"

	"github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/vmspec"
	"libvirt.org/go/libvirtxml"
)

// Inventory implements hypervisor.Snapshotter: every domain on libvirtd
// that is not a Restored restore domain (those carry Restored's metadata,
// whichever agent made them).
func (h *Host) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	return h.drv.Inventory(ctx)
}

// Inventory lists the domains that are not Restored's restore domains.
func (d *Driver) Inventory(ctx context.Context) ([]hypervisor.Domain, error) {
	doms, err := call(ctx, d, "list domains", func(l Libvirt) ([]libvirt.Domain, error) {
		ds, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive|libvirt.ConnectListDomainsInactive)
		return ds, err
	})
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	var out []hypervisor.Domain
	for _, dom := range doms {
		xml, err := call(ctx, d, "read "+dom.Name, func(l Libvirt) (string, error) { return l.DomainGetXMLDesc(dom, 0) })
		if isCode(err, libvirt.ErrNoDomain) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read domain %s: %w", dom.Name, err)
		}
		spec := &libvirtxml.Domain{}
		if err := spec.Unmarshal(xml); err != nil {
			return nil, fmt.Errorf("parse domain %s: %w", dom.Name, err)
		}
		if _, restore := vmspec.ParseMetadata(spec); restore {
			continue // a restore VM: never a guest
		}
		state, err := call(ctx, d, "state of "+dom.Name, func(l Libvirt) (int32, error) {
			s, _, err := l.DomainGetState(dom, 0)
			return s, err
		})
		if isCode(err, libvirt.ErrNoDomain) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("state of domain %s: %w", dom.Name, err)
		}
		x := hypervisor.Domain{UUID: uuid.UUID(dom.UUID).String(), Name: dom.Name, Running: libvirt.DomainState(state) == libvirt.DomainRunning,
			OwnerTenant: vmspec.ParseOwner(spec)}
		if spec.Devices != nil {
			for _, disk := range spec.Devices.Disks {
				if disk.Device == "disk" && disk.Target != nil {
					x.Disks = append(x.Disks, disk.Target.Dev)
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}
