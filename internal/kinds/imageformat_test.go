package kinds

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestImageFormatsCarryWhatQemuImgWritesAndTheAPIValue(t *testing.T) {
	for _, c := range []struct {
		f                  ImageFormat
		api                restorev1.ImageFormat
		qemu, options, ext string
	}{
		{ImageQCOW2, restorev1.ImageFormat_IMAGE_FORMAT_QCOW2, "qcow2", "", "qcow2"},
		{ImageVMDK, restorev1.ImageFormat_IMAGE_FORMAT_VMDK, "vmdk", "subformat=streamOptimized", "vmdk"},
		{ImageVHDX, restorev1.ImageFormat_IMAGE_FORMAT_VHDX, "vhdx", "subformat=dynamic", "vhdx"},
	} {
		if q, o := c.f.QEMU(); q != c.qemu || o != c.options || c.f.Extension() != c.ext || c.f.API() != c.api {
			t.Errorf("%s: qemu %q %q ext %q api %s", c.f, q, o, c.f.Extension(), c.f.API())
		}
		if got, ok := ImageFormatFromAPI(c.api); !ok || got != c.f {
			t.Errorf("from API %s: %s %v", c.api, got, ok)
		}
		if got, err := ParseImageFormat(c.f.String()); err != nil || got != c.f {
			t.Errorf("parse %q: %s %v", c.f, got, err)
		}
	}
	if _, ok := ImageFormatFromAPI(restorev1.ImageFormat_IMAGE_FORMAT_UNSPECIFIED); ok {
		t.Error("unspecified taken as a format")
	}
	if _, ok := ImageFormatFromAPI(99); ok {
		t.Error("an unknown value taken as a format")
	}
	if ImageRaw.API() != restorev1.ImageFormat_IMAGE_FORMAT_UNSPECIFIED {
		t.Error("raw is offered for download")
	}
	if _, err := ParseImageFormat("ova"); err == nil {
		t.Error("ova parsed")
	}
}
