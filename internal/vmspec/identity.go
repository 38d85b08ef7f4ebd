package vmspec

import "libvirt.org/go/libvirtxml"

// configureIdentity sets the domain's name and type: "kvm" when KVM guests
// really run on this host, "qemu" (TCG) otherwise.
func configureIdentity(c *Context, d *libvirtxml.Domain) error {
	d.Name = c.Host.DomainName(c.In.RestoreID)
	d.Type = "qemu"
	if c.Host.Accelerator == "kvm" {
		d.Type = "kvm"
	}
	d.OnPoweroff = "destroy"
	d.OnReboot = "restart"
	d.OnCrash = "destroy"
	return nil
}
