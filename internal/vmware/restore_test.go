package vmware

import (
	"testing"

	"github.com/restored/restored/internal/kinds"
)

// The descriptor a restore uploads is one the backup side reads back.
func TestTheUploadedDescriptorIsAFlatDisk(t *testing.T) {
	d, err := ParseDescriptor([]byte(FlatDescriptor("disk0-flat.vmdk", 1<<30)))
	if err != nil || d.Extent != "disk0-flat.vmdk" || d.Size != 1<<30 {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestDevicesFollowTheRecoveryPointsOS(t *testing.T) {
	for _, tc := range []struct {
		os                    kinds.OSFamily
		controller, nic, gues string
	}{
		{kinds.Linux, "pvscsi", "vmxnet3", "otherLinux64Guest"},
		{kinds.Windows, "lsilogic-sas", "e1000e", "windows9Server64Guest"},
		{kinds.OtherOS, "lsilogic-sas", "e1000e", "otherGuest64"},
	} {
		if c, n, g := controllerKind(tc.os), nicKind(tc.os), guestID(tc.os); c != tc.controller || n != tc.nic || g != tc.gues {
			t.Errorf("%s: %s %s %s, want %s %s %s", tc.os, c, n, g, tc.controller, tc.nic, tc.gues)
		}
	}
}
