package vmspec

import "libvirt.org/go/libvirtxml"

// configureGuestAgent adds the virtio-serial channel the QEMU guest agent
// talks on; libvirt picks the host-side socket.
func configureGuestAgent(_ *Context, d *libvirtxml.Domain) error {
	d.Devices.Channels = append(d.Devices.Channels, libvirtxml.DomainChannel{
		Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
		Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
	})
	return nil
}
