package ownership

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	uWeb = "4c4c4544-0042-3510-8053-b4c04f4e3032"
	uDB  = "4c4c4544-0042-3510-8053-b4c04f4e3033"
)

var inventory = []*restorev1.HostDomain{
	{HostId: "kvm-01", Uuid: uWeb, Name: "web-01", Running: true},
	{HostId: "kvm-01", Uuid: uDB, Name: "db-01", Moref: "vm-42"},
}

func kvm(id, tenant, name, uuid string) *restorev1.Guest {
	return &restorev1.Guest{Id: id, Tenant: tenant, Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "kvm-01", Name: name, Uuid: uuid}
}

func TestARegistrationNamesADomainTheHostReports(t *testing.T) {
	for _, tc := range []struct {
		name, byName, byUUID, byMoref string
		want                          string // the domain's UUID, or what the refusal says
		inv                           []*restorev1.HostDomain
	}{
		{"by name", "web-01", "", "", uWeb, inventory},
		{"by UUID", "", uDB, "", uDB, inventory},
		{"by both", "db-01", uDB, "", uDB, inventory},
		{"by VMware moref", "", "", "vm-42", uDB, inventory},
		{"by UUID and its moref", "", uDB, "vm-42", uDB, inventory},
		{"a name the host does not report", "mail-01", "", "", "reports no domain", inventory},
		{"a moref the host does not report", "", "", "vm-7", "reports no domain", inventory},
		{"a UUID with another moref", "", uWeb, "vm-42", "not vm-42", inventory},
		{"a restore domain (never in an inventory)", "restored-01a2…", "", "", "never guests", inventory},
		{"a UUID with another name", "web-01", uDB, "", "is named", inventory},
		{"a host that reported nothing", "web-01", "", "", "has reported no domains", nil},
	} {
		d, err := Find("kvm-01", tc.inv, Key{Name: tc.byName, UUID: tc.byUUID, Moref: tc.byMoref})
		switch {
		case strings.HasPrefix(tc.want, "4c4c"):
			if err != nil || d.Uuid != tc.want {
				t.Errorf("%s: %v %v, want domain %s", tc.name, d, err, tc.want)
			}
		case err == nil || status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v, want FAILED_PRECONDITION saying %q", tc.name, err, tc.want)
		}
	}
}

func TestADomainHasOneOwner(t *testing.T) {
	owned := []*restorev1.Guest{kvm("g1", "acme", "web-01", uWeb)}
	for _, tc := range []struct {
		tenant string
		owners []*restorev1.Guest
		want   codes.Code
	}{
		{"acme", nil, codes.OK},
		{"acme", owned, codes.AlreadyExists},
		{"globex", owned, codes.FailedPrecondition},
	} {
		if got := status.Code(MayOwn(tc.tenant, uWeb, tc.owners)); got != tc.want {
			t.Errorf("%s with owners %v: %v, want %v", tc.tenant, tc.owners, got, tc.want)
		}
	}
}

func TestGuestsAreVerifiedAgainstTheInventory(t *testing.T) {
	none := func(string) []*restorev1.Guest { return nil }
	guests := []*restorev1.Guest{
		kvm("g1", "acme", "web-01", ""),    // registered by name before ownership: gets the UUID
		kvm("g2", "acme", "old-name", uDB), // renamed: follows its UUID
		kvm("g3", "acme", "gone-01", ""),   // not reported
		kvm("g4", "globex", "web-01", ""),  // a second tenant's claim on web-01
	}
	changed := Verify("kvm-01", guests, inventory, none)
	got := map[string]*restorev1.Guest{}
	for _, g := range changed {
		got[g.Id] = g
	}
	if g := got["g1"]; g == nil || g.Uuid != uWeb || g.State != Conflict {
		t.Errorf("g1: %v, want web-01's UUID and CONFLICT (globex claims it too)", g)
	}
	if g := got["g4"]; g == nil || g.State != Conflict {
		t.Errorf("g4: %v, want CONFLICT", g)
	}
	if g := got["g2"]; g == nil || g.Name != "db-01" || g.State != Verified {
		t.Errorf("g2: %v, want renamed to db-01 and VERIFIED", g)
	}
	if g := got["g3"]; g == nil || g.State != Unverified || !strings.Contains(g.StateReason, "does not report") {
		t.Errorf("g3: %v, want UNVERIFIED", g)
	}
	// A guest elsewhere that names the same domain conflicts too.
	elsewhere := func(uuid string) []*restorev1.Guest {
		if uuid == uDB {
			return []*restorev1.Guest{{Id: "g9", Tenant: "globex", HostId: "kvm-02", Uuid: uDB}}
		}
		return nil
	}
	for _, g := range Verify("kvm-01", []*restorev1.Guest{kvm("g2", "acme", "db-01", uDB)}, inventory, elsewhere) {
		if g.State != Conflict {
			t.Errorf("g2 with g9 elsewhere: %v, want CONFLICT", g)
		}
	}
	// Nothing changes twice.
	verified := Verify("kvm-01", []*restorev1.Guest{kvm("g5", "acme", "web-01", uWeb)}, inventory, none)
	if len(verified) != 1 || verified[0].State != Verified {
		t.Fatalf("g5: %v", verified)
	}
	if again := Verify("kvm-01", verified, inventory, none); len(again) != 0 {
		t.Fatalf("verifying a verified guest again changed %v", again)
	}
	if err := Snapshottable(got["g3"]); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("an UNVERIFIED guest may be snapshotted: %v", err)
	}
	if err := Snapshottable(verified[0]); err != nil {
		t.Fatalf("a VERIFIED guest may not be snapshotted: %v", err)
	}
}
