package kinds

// DiskFormat is an image format, always taken from a manifest, never
// probed from the file.
type DiskFormat uint8

// The formats a recovery point's disk may have.
const (
	Raw DiskFormat = iota + 1
	QCOW2
)

var formatNames = names[DiskFormat]{kind: "format", names: []string{"", "raw", "qcow2"}}

// String is the format as qemu-img and libvirt name it.
func (f DiskFormat) String() string { return formatNames.name(f) }

// Valid says whether f is one of the formats.
func (f DiskFormat) Valid() bool { return formatNames.valid(f) }

// ParseDiskFormat reads "raw" or "qcow2".
func ParseDiskFormat(s string) (DiskFormat, error) { return formatNames.parse(s) }

// MarshalText writes the format's name (manifests).
func (f DiskFormat) MarshalText() ([]byte, error) { return formatNames.marshal(f) }

// UnmarshalText reads a format's name.
func (f *DiskFormat) UnmarshalText(b []byte) (err error) {
	*f, err = ParseDiskFormat(string(b))
	return err
}
