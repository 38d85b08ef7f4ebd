package vmspec

import (
	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// configureFeatures turns on ACPI and the APIC and sets the clock: UTC,
// except Windows, which keeps local time in its RTC.
func configureFeatures(c *Context, d *libvirtxml.Domain) error {
	d.Features = &libvirtxml.DomainFeatureList{
		ACPI: &libvirtxml.DomainFeature{},
		APIC: &libvirtxml.DomainFeatureAPIC{},
	}
	offset := "utc"
	if c.In.OS == kinds.Windows {
		offset = "localtime"
	}
	d.Clock = &libvirtxml.DomainClock{Offset: offset}
	return nil
}
