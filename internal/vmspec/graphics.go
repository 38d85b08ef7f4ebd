package vmspec

import "libvirt.org/go/libvirtxml"

// configureGraphics adds a VGA screen (screenshots prove a boot) and a VNC
// console on a unix socket libvirt makes for the domain (no TCP port at
// all: nothing on the network reaches it, and the agent reaches it from
// whatever network it is in), with a per-domain password; people reach it
// only through restored's single-use console tokens.
func configureGraphics(c *Context, d *libvirtxml.Domain) error {
	d.Devices.Graphics = append(d.Devices.Graphics, libvirtxml.DomainGraphic{VNC: &libvirtxml.DomainGraphicVNC{
		Passwd: c.In.VNCPassword,
		Listeners: []libvirtxml.DomainGraphicListener{{
			Socket: &libvirtxml.DomainGraphicListenerSocket{},
		}},
	}})
	d.Devices.Videos = append(d.Devices.Videos, libvirtxml.DomainVideo{
		Model: libvirtxml.DomainVideoModel{Type: "vga", VRam: 16384, Heads: 1, Primary: "yes"},
	})
	return nil
}
