package vmspec

import (
	"fmt"

	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// configureFirmware sets the machine and firmware: SeaBIOS, or OVMF
// (read-only code, a per-domain NVRAM copied from the host's template).
func configureFirmware(c *Context, d *libvirtxml.Domain) error {
	emulator := c.Host.Emulator
	if emulator == "" {
		emulator = "/usr/bin/qemu-system-x86_64"
	}
	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	d.Devices.Emulator = emulator
	// The boot order is set on the first disk (configureDisks); libvirt
	// refuses <os><boot/> together with per-device boot orders.
	d.OS = &libvirtxml.DomainOS{
		Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"},
	}
	if c.In.Firmware != kinds.UEFI {
		return nil
	}
	if c.Host.OVMFCode == "" || c.Host.OVMFVars == "" {
		return fmt.Errorf("firmware uefi: this host has no OVMF (install Debian's ovmf package)")
	}
	d.OS.Loader = &libvirtxml.DomainLoader{Path: c.Host.OVMFCode, Readonly: "yes", Type: "pflash", Secure: "no"}
	d.OS.NVRam = &libvirtxml.DomainNVRam{NVRam: c.In.NVRAM, Template: c.Host.OVMFVars}
	return nil
}
