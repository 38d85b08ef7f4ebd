package vmspec

import (
	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// diskBus is virtio for Linux guests (they have the drivers), SATA for
// Windows and unknown guests (they boot without extra drivers).
func diskBus(os kinds.OSFamily) (bus, prefix string) {
	if os.Paravirtual() {
		return "virtio", "vd"
	}
	return "sata", "sd"
}

// configureDisks attaches each overlay with its backing chain spelled out,
// so QEMU never probes a format. The chain's images are read-only recovery
// point files: relabel='no' keeps libvirt's DAC driver from chowning them to
// the QEMU user (and leaving them so), which would change the backup itself.
func configureDisks(c *Context, d *libvirtxml.Domain) error {
	bus, prefix := diskBus(c.In.OS)
	for i, disk := range c.In.Disks {
		x := libvirtxml.DomainDisk{
			Device: "disk",
			// A full work dir pauses the guest (the agent says so) instead of
			// failing its writes: nothing it wrote is lost.
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: kinds.QCOW2.String(), Discard: "unmap", ErrorPolicy: "enospace"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk.Overlay}},
			Target: &libvirtxml.DomainDiskTarget{Dev: prefix + string(rune('a'+i)), Bus: bus},
		}
		if i == 0 {
			x.Boot = &libvirtxml.DomainDeviceBoot{Order: 1}
		}
		var tail **libvirtxml.DomainDiskBackingStore = &x.BackingStore
		for _, el := range disk.Chain {
			bs := &libvirtxml.DomainDiskBackingStore{
				Format: &libvirtxml.DomainDiskFormat{Type: el.Format.String()},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{
					File:     el.Path,
					SecLabel: []libvirtxml.DomainDeviceSecLabel{{Model: "dac", Relabel: "no"}},
				}},
			}
			*tail = bs
			tail = &bs.BackingStore
		}
		// The chain ends here: nothing below the last element.
		*tail = &libvirtxml.DomainDiskBackingStore{}
		d.Devices.Disks = append(d.Devices.Disks, x)
	}
	return nil
}
