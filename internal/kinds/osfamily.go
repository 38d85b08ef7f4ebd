package kinds

// OSFamily is the family of a recovery point's operating system: it
// chooses the devices a restored VM gets.
type OSFamily uint8

// The OS families.
const (
	Linux OSFamily = iota + 1
	Windows
	OtherOS
)

var osNames = names[OSFamily]{kind: "os", names: []string{"", "linux", "windows", "other"}}

func (o OSFamily) String() string { return osNames.name(o) }

// Paravirtual says whether the family boots with paravirtual devices
// (virtio on KVM, pvscsi and vmxnet3 on VMware): Linux has the drivers in
// its kernel; Windows and unknown systems get emulated devices their
// installers know. Every hypervisor's device choice asks it.
func (o OSFamily) Paravirtual() bool { return o == Linux }

// Valid says whether o is one of the families.
func (o OSFamily) Valid() bool { return osNames.valid(o) }

// ParseOSFamily reads "linux", "windows" or "other".
func ParseOSFamily(s string) (OSFamily, error) { return osNames.parse(s) }

// MarshalText writes the family's name (manifests).
func (o OSFamily) MarshalText() ([]byte, error) { return osNames.marshal(o) }

// UnmarshalText reads a family's name.
func (o *OSFamily) UnmarshalText(b []byte) (err error) {
	*o, err = ParseOSFamily(string(b))
	return err
}
