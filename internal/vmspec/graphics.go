package vmspec

import "libvirt.org/go/libvirtxml"

// configureGraphics adds a VGA screen (screenshots prove a boot) and a VNC
// console that listens on 127.0.0.1 only, with a per-domain password;
// people reach it only through restored's single-use console tokens.
func configureGraphics(c *Context, d *libvirtxml.Domain) error {
	d.Devices.Graphics = append(d.Devices.Graphics, libvirtxml.DomainGraphic{VNC: &libvirtxml.DomainGraphicVNC{
		Port:     -1,
		AutoPort: "yes",
		Passwd:   c.In.VNCPassword,
		Listeners: []libvirtxml.DomainGraphicListener{{
			Address: &libvirtxml.DomainGraphicListenerAddress{Address: "127.0.0.1"},
		}},
	}})
	d.Devices.Videos = append(d.Devices.Videos, libvirtxml.DomainVideo{
		Model: libvirtxml.DomainVideoModel{Type: "vga", VRam: 16384, Heads: 1, Primary: "yes"},
	})
	return nil
}
