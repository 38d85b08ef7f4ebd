package fsm_test

import (
	"bytes"
	"io"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/ownership"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func kvmGuest(id, tenant, name string) *restorev1.Guest {
	return &restorev1.Guest{Id: id, Tenant: tenant, Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: name}
}

func inventory(h *harness, domains ...*restorev1.HostDomain) {
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY, &raftv1.ReportInventory{HostId: "h1", Time: at(9), Domains: domains})
}

func TestOnlyAReportedDomainWithoutAnOwnerCanBeRegistered(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "globex", CreateTime: at(0)}})
	g := h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: kvmGuest("g1", "acme", "web")}).(*restorev1.Guest)
	if g.Uuid != uuidWeb || g.State != ownership.Verified {
		t.Fatalf("registered %v: want web's UUID, VERIFIED", g)
	}
	before := h.index
	for _, tc := range []struct {
		name string
		g    *restorev1.Guest
		want codes.Code
	}{
		{"another tenant, the same domain", kvmGuest("g2", "globex", "web"), codes.FailedPrecondition},
		{"another tenant, the same domain by UUID", &restorev1.Guest{Id: "g3", Tenant: "globex", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Uuid: uuidWeb}, codes.FailedPrecondition},
		{"the same tenant again", kvmGuest("g4", "acme", "web"), codes.AlreadyExists},
		{"a domain the host does not report", kvmGuest("g5", "acme", "restored-01a2"), codes.FailedPrecondition},
		{"a host with no inventory", &restorev1.Guest{Id: "g6", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h9", Name: "web"}, codes.FailedPrecondition},
	} {
		res := h.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: tc.g})
		if res.Err == nil {
			t.Errorf("%s: registered", tc.name)
			continue
		}
		wantCode(t, res, tc.want)
	}
	if got := len(h.st.Read(nil).Guests("")); got != 1 || h.index-before != 5 {
		t.Fatalf("after refusals: %d guests", got)
	}
}

func TestTheInventoryVerifiesRenamesAndLosesGuests(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: kvmGuest("g1", "acme", "web")})
	snap := func(id string) *fsm.Result {
		return h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: &restorev1.Snapshot{Id: id, Tenant: "acme", GuestId: "g1"}})
	}
	// Renamed on the host: the same guest, by UUID.
	inventory(h, &restorev1.HostDomain{Uuid: uuidWeb, Name: "web-renamed"}, &restorev1.HostDomain{Uuid: uuidDB, Name: "db"})
	if g := h.st.Read(nil).Guest("g1"); g.Name != "web-renamed" || g.State != ownership.Verified {
		t.Fatalf("after the rename: %v", g)
	}
	// Gone from the host: UNVERIFIED, and no snapshot.
	inventory(h, &restorev1.HostDomain{Uuid: uuidDB, Name: "db"})
	if g := h.st.Read(nil).Guest("g1"); g.State != ownership.Unverified {
		t.Fatalf("after the domain went: %v", g)
	}
	wantCode(t, snap("s1"), codes.FailedPrecondition)
	// Back: VERIFIED, and a snapshot may be taken.
	inventory(h, &restorev1.HostDomain{Uuid: uuidWeb, Name: "web"})
	if res := snap("s2"); res.Err != nil {
		t.Fatalf("snapshot of the verified guest: %v", res.Err)
	}
}

func TestTheHosterAssignsGuestsInTheDomainXML(t *testing.T) {
	h := newHarness(t)
	seed(h)
	tagged := &restorev1.HostDomain{Uuid: uuidDB, Name: "db", OwnerTenant: "acme"}
	adopt := &raftv1.ReportInventory{HostId: "h1", Time: at(9), Domains: []*restorev1.HostDomain{tagged},
		Adopt: []*restorev1.Guest{{Id: "g7", Tenant: "acme", Name: "db", Uuid: uuidDB}}}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY, adopt)
	if g := h.st.Read(nil).Guest("g7"); g == nil || g.HostId != "h1" || g.State != ownership.Verified {
		t.Fatalf("adopted guest %v", g)
	}
	// The same adoption again (another report raced it) adds nothing.
	again := proto.Clone(adopt).(*raftv1.ReportInventory)
	again.Adopt[0].Id = "g8"
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY, again)
	if got := len(h.st.Read(nil).Guests("acme")); got != 1 {
		t.Fatalf("%d guests after a second adoption of the same domain", got)
	}
}

// Registrations made before ownership was checked (by name, by any
// tenant) are migrated by the first inventory: each gets its domain's
// UUID; two tenants naming one domain are both CONFLICT until an operator
// unregisters one, and then the other is VERIFIED.
func TestRegistrationsFromBeforeOwnershipAreMigrated(t *testing.T) {
	h := newHarness(t)
	seed(h)
	var sink memSink
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	var state raftv1.Snapshot
	if err := proto.Unmarshal(sink.Bytes(), &state); err != nil {
		t.Fatal(err)
	}
	state.Tenants = append(state.Tenants, &restorev1.Tenant{Id: "globex"})
	state.Guests = append(state.Guests, kvmGuest("old-acme", "acme", "web"), kvmGuest("old-globex", "globex", "web"))
	b, _ := proto.Marshal(&state)
	if err := h.f.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	inventory(h, &restorev1.HostDomain{Uuid: uuidWeb, Name: "web"})
	r := h.st.Read(nil)
	for _, id := range []string{"old-acme", "old-globex"} {
		if g := r.Guest(id); g.Uuid != uuidWeb || g.State != ownership.Conflict {
			t.Fatalf("%s after the first inventory: %v, want web's UUID and CONFLICT", id, g)
		}
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST, &raftv1.UnregisterGuest{Id: "old-globex"})
	if g := h.st.Read(nil).Guest("old-acme"); g.State != ownership.Verified {
		t.Fatalf("old-acme once globex's claim is gone: %v", g)
	}
}
