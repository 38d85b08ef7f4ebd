package agent

import (
	"fmt"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
)

func bridgedRestore(state restorev1.RestoreState, bridge string, linkDown bool) *restorev1.Restore {
	r := restoreIn(r1, state, virtualize)
	r.Network = &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_BRIDGED, Bridge: bridge, LinkDown: linkDown, LinkDownReason: "asset web is a production machine"}
	return r
}

func TestARestoreHeldDownBootsWithItsLinkDownAndComesUpWhenReleased(t *testing.T) {
	s := newStand(t)
	s.p.bridges = hostBridges([]Bridge{{Name: "br-lab", Tenants: []string{"acme"}}})
	s.pass(running(bridgedRestore(lifecycle.Scheduled, "br-lab", true)))
	s.wantCalls("prepare "+r1, "boot "+r1)
	if vm := s.hv.VM(r1); vm == nil || !vm.Spec.LinkDown || vm.Spec.Bridge != "br-lab" {
		t.Fatalf("vm %+v: want it on br-lab with its link down", vm)
	}
	// Still held down: nothing happens.
	s.pass(running(bridgedRestore(lifecycle.Running, "br-lab", true)))
	s.wantCalls("prepare "+r1, "boot "+r1)
	// Released: the link comes up, once.
	s.pass(running(bridgedRestore(lifecycle.Running, "br-lab", false)))
	s.pass(running(bridgedRestore(lifecycle.Running, "br-lab", false)))
	s.wantCalls("prepare "+r1, "boot "+r1, "link-up "+r1)
	if vm := s.hv.VM(r1); vm.Spec.LinkDown {
		t.Fatal("the link is still down")
	}
}

func TestTheHostRefusesABridgeItDoesNotOfferTheTenant(t *testing.T) {
	s := newStand(t)
	s.p.bridges = hostBridges([]Bridge{{Name: "br-lab", Tenants: []string{"globex"}}})
	s.pass(running(bridgedRestore(lifecycle.Scheduled, "br-lab", false)))
	s.wantCalls("teardown " + r1) // never prepared: the failed start only clears what is left
	if last := s.rep.last(r1); last.State != lifecycle.Failed || !strings.Contains(last.StateReason, "not offered to tenant acme") {
		t.Fatalf("report %v", last)
	}
}

func TestBridgeFlagsParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the bridge, or what the refusal says
	}{
		{"br0=acme", "br0 [acme] false"},
		{"br0=acme,globex", "br0 [acme globex] false"},
		{"br-lab=*", "br-lab [] true"},
		{"br0", "want NAME=TENANT"},
		{"br0=", "want NAME=TENANT"},
		{"this-name-is-too-long=acme", "want NAME=TENANT"},
		{"br0=Acme", "not a tenant id"},
	} {
		b, err := ParseBridge(tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%s %v %v", b.Name, b.Tenants, b.All)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}
