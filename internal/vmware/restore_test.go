package vmware

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
)

// The chain qemu-img converts is spelled out layer by layer: nothing in
// the backup is probed, and the base has no backing at all.
func TestAChainIsSpelledOutForQEMU(t *testing.T) {
	got, err := chainJSON([]storage.Layer{{Path: "/r/inc/d.qcow2", Format: kinds.QCOW2}, {Path: "/r/full/d.qcow2", Format: kinds.QCOW2}, {Path: "/r/base/d.raw", Format: kinds.Raw}})
	if err != nil || !strings.HasPrefix(got, "json:") {
		t.Fatal(got, err)
	}
	var tree map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "json:")), &tree); err != nil {
		t.Fatal(err)
	}
	want := `{"backing":{"backing":{"driver":"raw","file":{"driver":"file","filename":"/r/base/d.raw"}},"driver":"qcow2","file":{"driver":"file","filename":"/r/full/d.qcow2"}},"driver":"qcow2","file":{"driver":"file","filename":"/r/inc/d.qcow2"}}`
	if b, _ := json.Marshal(tree); string(b) != want {
		t.Fatalf("chain\n%s\nwant\n%s", b, want)
	}
	one, _ := chainJSON([]storage.Layer{{Path: "/r/full/d.qcow2", Format: kinds.QCOW2}})
	if !strings.Contains(one, `"backing":null`) {
		t.Fatalf("a lone qcow2 may still name a backing file in its header: %s", one)
	}
	if _, err := chainJSON(nil); err == nil {
		t.Fatal("a disk without layers")
	}
}

// The descriptor a restore uploads is one the backup side reads back.
func TestTheUploadedDescriptorIsAFlatDisk(t *testing.T) {
	d, err := ParseDescriptor([]byte(FlatDescriptor("disk0-flat.vmdk", 1<<30)))
	if err != nil || d.Extent != "disk0-flat.vmdk" || d.Size != 1<<30 {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestDevicesFollowTheRecoveryPointsOS(t *testing.T) {
	for _, tc := range []struct {
		os               kinds.OSFamily
		controller, gues string
	}{
		{kinds.Linux, "pvscsi", "otherLinux64Guest"},
		{kinds.Windows, "lsilogic-sas", "windows9Server64Guest"},
		{kinds.OtherOS, "lsilogic-sas", "otherGuest64"},
	} {
		if c, g := controllerKind(tc.os), guestID(tc.os); c != tc.controller || g != tc.gues {
			t.Errorf("%s: %s %s, want %s %s", tc.os, c, g, tc.controller, tc.gues)
		}
	}
}

func TestRestoreVMsAreKnownByTheirAnnotation(t *testing.T) {
	h := &Host{cfg: Config{HostID: "vc-01"}}
	if id, ok := h.ours(h.annotation("r1")); !ok || id != "r1" {
		t.Fatal("this host's annotation")
	}
	other := &Host{cfg: Config{HostID: "vc-02"}}
	for _, note := range []string{other.annotation("r1"), "", "Restored restore r1", "a note of the admin's"} {
		if _, ok := h.ours(note); ok {
			t.Errorf("%q taken for this host's", note)
		}
	}
}
