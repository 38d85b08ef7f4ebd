package vmspec

import (
	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// nicModel matches the disk bus: virtio for Linux, e1000 otherwise.
func nicModel(os kinds.OSFamily) string {
	if os.Paravirtual() {
		return "virtio"
	}
	return "e1000"
}

// configureNetwork adds one NIC on a bridge: the agent's own isolated bridge
// (no host address, no forwarding) or an existing bridge named in the
// request. NONE adds no NIC at all.
func configureNetwork(c *Context, d *libvirtxml.Domain) error {
	if c.In.Network == kinds.NoNetwork {
		return nil
	}
	// No MAC is given: libvirt makes one of its own for each restore, so a
	// restore never answers with its production machine's MAC.
	iface := libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: c.In.Bridge}},
		Model:  &libvirtxml.DomainInterfaceModel{Type: nicModel(c.In.OS)},
	}
	if c.In.LinkDown {
		iface.Link = &libvirtxml.DomainInterfaceLink{State: "down"}
	}
	d.Devices.Interfaces = append(d.Devices.Interfaces, iface)
	return nil
}
