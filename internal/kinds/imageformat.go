package kinds

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// ImageFormat is the format of an image file made for download.
type ImageFormat uint8

// The image formats. Raw is what a VMware restore uploads as a flat VMDK
// (never offered for download: it is as large as the disk).
const (
	ImageQCOW2 ImageFormat = iota + 1
	ImageVMDK
	ImageVHDX
	ImageRaw
)

// imageFormats is the one table of image formats: name, API value, what
// qemu-img writes (-O and -o) and the file's extension.
var imageFormats = []struct {
	f         ImageFormat
	name      string
	api       restorev1.ImageFormat
	qemu      string
	options   string
	extension string
}{
	{ImageQCOW2, "qcow2", restorev1.ImageFormat_IMAGE_FORMAT_QCOW2, "qcow2", "", "qcow2"},
	{ImageVMDK, "vmdk", restorev1.ImageFormat_IMAGE_FORMAT_VMDK, "vmdk", "subformat=streamOptimized", "vmdk"},
	{ImageVHDX, "vhdx", restorev1.ImageFormat_IMAGE_FORMAT_VHDX, "vhdx", "subformat=dynamic", "vhdx"},
	{ImageRaw, "raw", restorev1.ImageFormat_IMAGE_FORMAT_UNSPECIFIED, "raw", "", "raw"},
}

var imageFormatNames = func() names[ImageFormat] {
	n := names[ImageFormat]{kind: "image format", names: []string{""}}
	for _, f := range imageFormats {
		n.names = append(n.names, f.name)
	}
	return n
}()

func (f ImageFormat) row() (int, bool) {
	for i, r := range imageFormats {
		if r.f == f {
			return i, true
		}
	}
	return 0, false
}

// String is the format's name ("vmdk").
func (f ImageFormat) String() string { return imageFormatNames.name(f) }

// Valid says whether f is one of the formats.
func (f ImageFormat) Valid() bool { _, ok := f.row(); return ok }

// ParseImageFormat reads "qcow2", "vmdk", "vhdx" or "raw".
func ParseImageFormat(s string) (ImageFormat, error) { return imageFormatNames.parse(s) }

// QEMU is what qemu-img convert is given: the output format (-O) and its
// options (-o, "" for none).
func (f ImageFormat) QEMU() (format, options string) {
	i, _ := f.row()
	return imageFormats[i].qemu, imageFormats[i].options
}

// Extension is the file name's extension, without the dot.
func (f ImageFormat) Extension() string { i, _ := f.row(); return imageFormats[i].extension }

// API is the format as the API says it (raw: unspecified, never offered).
func (f ImageFormat) API() restorev1.ImageFormat { i, _ := f.row(); return imageFormats[i].api }

// ImageFormatFromAPI converts the API's format; ok is false for
// unspecified and unknown values.
func ImageFormatFromAPI(v restorev1.ImageFormat) (ImageFormat, bool) {
	for _, r := range imageFormats {
		if r.api == v && v != restorev1.ImageFormat_IMAGE_FORMAT_UNSPECIFIED {
			return r.f, true
		}
	}
	return 0, false
}
