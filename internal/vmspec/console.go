package vmspec

import "libvirt.org/go/libvirtxml"

// configureConsole puts the serial console on a pty whose output virtlogd
// also writes to a log file: the agent reads boot markers from it.
func configureConsole(c *Context, d *libvirtxml.Domain) error {
	port := uint(0)
	d.Devices.Serials = append(d.Devices.Serials, libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
		Log:    &libvirtxml.DomainChardevLog{File: c.In.SerialLog, Append: "off"},
	})
	d.Devices.Consoles = append(d.Devices.Consoles, libvirtxml.DomainConsole{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
	})
	return nil
}
