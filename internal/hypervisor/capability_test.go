package hypervisor

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every capability has a wire value and reads back from it; the enum has
// no value the table lacks.
func TestEveryCapabilityCrossesTheWireAndBack(t *testing.T) {
	if got := FromWire(KVMSet.Wire()); got != KVMSet {
		t.Fatalf("KVM's set read back as %v", got)
	}
	for _, n := range capabilityNames {
		if got := FromWire(Set(n.c).Wire()); got != Set(n.c) {
			t.Errorf("%s read back as %v", n.name, got)
		}
	}
	if n := len(restorev1.HostCapability_name) - 1; n != len(capabilityNames) {
		t.Fatalf("the API has %d capabilities, the table %d", n, len(capabilityNames))
	}
	if FromWire([]restorev1.HostCapability{99, 0}) != 0 {
		t.Fatal("unknown wire values made capabilities")
	}
}

func TestAHostWithoutReportedCapabilitiesIsAKVMHost(t *testing.T) {
	if OfHost(&restorev1.Host{}) != KVMSet {
		t.Fatal("a host from before capabilities were reported is not KVM's set")
	}
	h := &restorev1.Host{Capabilities: []restorev1.HostCapability{restorev1.HostCapability_HOST_CAPABILITY_SNAPSHOTS}}
	if s := OfHost(h); s.Has(Restores) || !s.Has(Snapshots) {
		t.Fatalf("%v", s)
	}
	err := Missing("vc-01", Restores, "boot restores")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "host vc-01 cannot boot restores: its hypervisor lacks the restores capability") {
		t.Fatal(err)
	}
}

// A driver knows its own restore VMs by their note, and no other host's.
func TestRestoreNotesNameTheRestoreAndTheHost(t *testing.T) {
	if id, ok := ParseRestoreNote(RestoreNote("r1", "vc-01"), "vc-01"); !ok || id != "r1" {
		t.Fatal("this host's note")
	}
	for _, note := range []string{RestoreNote("r1", "vc-02"), "", "Restored restore r1", "Restored restore  of host vc-01", "a note of the admin's"} {
		if _, ok := ParseRestoreNote(note, "vc-01"); ok {
			t.Errorf("%q taken for vc-01's", note)
		}
	}
}
