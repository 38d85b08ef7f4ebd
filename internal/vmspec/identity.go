package vmspec

import "libvirt.org/go/libvirtxml"

// configureIdentity sets the domain's name and type ("kvm" when KVM guests
// really run on this host, "qemu" (TCG) otherwise) and who QEMU runs as.
func configureIdentity(c *Context, d *libvirtxml.Domain) error {
	d.Name = c.Host.DomainName(c.In.RestoreID)
	d.Type = "qemu"
	if c.Host.Accelerator == "kvm" {
		d.Type = "kvm"
	}
	d.OnPoweroff = "destroy"
	d.OnReboot = "restart"
	d.OnCrash = "destroy"
	if c.In.DACLabel != "" {
		// QEMU runs as the restore's own uid; libvirt gives it the overlay
		// and NVRAM (relabel), never the recovery point (see disks.go).
		d.SecLabel = []libvirtxml.DomainSecLabel{{Type: "static", Model: "dac", Relabel: "yes", Label: c.In.DACLabel}}
	}
	return nil
}
