// Package kinds owns the small closed sets of values that cross Restored's
// boundaries: firmware, disk format, OS family, network mode and
// hypervisor. Each is a Go type with its names (the manifest's, the
// flags', libvirt's) and its conversions to and from the public API's enum,
// in one file each; inside the code only these types travel, strings and
// API enums only at the edges. It must not grow behaviour beyond names and
// conversions.
package kinds
