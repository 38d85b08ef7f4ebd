package vmspec

import "libvirt.org/go/libvirtxml"

// configureResources sets memory and vCPUs, and the CPU model: the host's
// own CPU under KVM, QEMU's default model under TCG.
func configureResources(c *Context, d *libvirtxml.Domain) error {
	d.Memory = &libvirtxml.DomainMemory{Value: uint(c.In.MemoryMiB), Unit: "MiB"}
	d.VCPU = &libvirtxml.DomainVCPU{Placement: "static", Value: uint(c.In.VCPUs)}
	if c.Host.Accelerator == "kvm" {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough", Check: "none", Migratable: "on"}
	}
	return nil
}
