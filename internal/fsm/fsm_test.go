package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

type harness struct {
	t     *testing.T
	st    *store.Store
	f     *fsm.FSM
	index uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, st: st, f: fsm.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

// apply runs one command through raft.FSM.Apply and returns its result.
func (h *harness) apply(ct raftv1.CommandType, msg proto.Message) *fsm.Result {
	h.t.Helper()
	data, err := fsm.Encode(ct, msg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if res == nil {
		h.t.Fatalf("%s: no result", ct)
	}
	return res
}

func (h *harness) mustApply(ct raftv1.CommandType, msg proto.Message) proto.Message {
	h.t.Helper()
	res := h.apply(ct, msg)
	if res.Err != nil {
		h.t.Fatalf("%s: %v", ct, res.Err)
	}
	return res.Value
}

// checkAllocation recomputes every host's allocation from its restores and
// compares it with what the FSM keeps on the host record.
func (h *harness) checkAllocation() {
	h.t.Helper()
	r := h.st.Read(nil)
	for _, host := range r.Hosts() {
		want := &restorev1.Capacity{}
		for _, x := range r.RestoresOnHost(host.Id) {
			if store.HoldsCapacity(x) {
				want.Vcpus += x.Vcpus
				want.MemoryMib += x.MemoryMib
			}
		}
		got := r.Allocated(host.Id)
		if got.Vcpus != want.Vcpus || got.MemoryMib != want.MemoryMib {
			h.t.Fatalf("host %s allocation %v, restores on it hold %v", host.Id, got, want)
		}
	}
}

func wantCode(t *testing.T, res *fsm.Result, code codes.Code) {
	t.Helper()
	if status.Code(res.Err) != code {
		t.Fatalf("got %v, want code %s", res.Err, code)
	}
}

// seed builds a small world: tenant acme, host h1 holding rp1, restore r1 placed on h1.
func seed(h *harness) {
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme", CreateTime: at(0)}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: &raftv1.StoredToken{
		Token: &restorev1.Token{Id: "tok-1", Tenant: "acme", Role: "partner", CreateTime: at(0)}, SecretSha256: []byte{1, 2, 3},
	}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{
		Id: "h1", Accelerator: "tcg", Capacity: &restorev1.Capacity{Vcpus: 4, MemoryMib: 4096}, RegisterTime: at(1),
	}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: []*restorev1.RecoveryPoint{
		{Id: "rp1", Tenant: "acme", Asset: "web", Valid: true},
	}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r1", "req-1", restorev1.Mode_MODE_VIRTUALIZE), BodySha256: []byte("body-1")})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Placements: []*raftv1.Placement{{RestoreId: "r1", HostId: "h1"}}, Time: at(3)})
}

func newRestore(id, req string, mode restorev1.Mode) *restorev1.Restore {
	return &restorev1.Restore{
		Id: id, Tenant: "acme", RecoveryPointId: "rp1", Asset: "web", Mode: mode, Vcpus: 1, MemoryMib: 256,
		TtlSeconds: 60, RequestId: req, State: restorev1.RestoreState_RESTORE_STATE_PENDING,
		CreateTime: at(2), ExpireTime: at(62),
	}
}

func TestEveryCommandHasAnApplyFunction(t *testing.T) {
	h := newHarness(t)
	for n, name := range raftv1.CommandType_name {
		if n == 0 {
			continue
		}
		res := h.apply(raftv1.CommandType(n), &raftv1.CreateTenant{})
		if res.Err != nil && bytes.Contains([]byte(res.Err.Error()), []byte("unknown command type")) {
			t.Errorf("%s has no apply function", name)
		}
	}
}

func TestUnknownCommandIsRefusedNotApplied(t *testing.T) {
	h := newHarness(t)
	res := h.apply(raftv1.CommandType(9999), &raftv1.CreateTenant{})
	if res.Err == nil {
		t.Fatal("unknown command type was accepted")
	}
}

func TestTenantsAndTokens(t *testing.T) {
	h := newHarness(t)
	seed(h)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme"}}), codes.AlreadyExists)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REVOKE_TOKEN, &raftv1.RevokeToken{Id: "nope"}), codes.NotFound)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REVOKE_TOKEN, &raftv1.RevokeToken{Id: "tok-1", RevokeTime: at(9)})
	if got := h.st.Read(nil).Token("tok-1").Token.RevokeTime.AsTime(); !got.Equal(at(9).AsTime()) {
		t.Fatalf("revoke time %v", got)
	}
	// A second bootstrap token is refused, deterministically.
	boot := func(id string) *raftv1.CreateToken {
		return &raftv1.CreateToken{Token: &raftv1.StoredToken{Token: &restorev1.Token{Id: id, Role: "admin"}, Bootstrap: true}}
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, boot("tok-b1"))
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, boot("tok-b2")), codes.AlreadyExists)
}

func TestCreateRestoreIsIdempotentByRequestID(t *testing.T) {
	h := newHarness(t)
	seed(h)
	// Same request id, same body: the first restore comes back, nothing new is stored.
	again := h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r-other", "req-1", restorev1.Mode_MODE_VIRTUALIZE), BodySha256: []byte("body-1")})
	if again.(*restorev1.Restore).Id != "r1" {
		t.Fatalf("got %s, want the first restore r1", again.(*restorev1.Restore).Id)
	}
	if h.st.Read(nil).Restore("r-other") != nil {
		t.Fatal("a duplicate restore was stored")
	}
	// Same request id, another body: conflict.
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r-x", "req-1", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("body-2")}), codes.AlreadyExists)
}

func TestRestoreLifecycle(t *testing.T) {
	h := newHarness(t)
	seed(h)
	r := func() *restorev1.Restore { return h.st.Read(nil).Restore("r1") }
	if r().State != restorev1.RestoreState_RESTORE_STATE_SCHEDULED || r().HostId != "h1" {
		t.Fatalf("after placement: %v on %q", r().State, r().HostId)
	}
	report := func(host string, s restorev1.RestoreState, boot *restorev1.Boot) *fsm.Result {
		return h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{
			Report: &restorev1.ReportRestoreStatusRequest{HostId: host, RestoreId: "r1", State: s, Boot: boot}, Time: at(10),
		})
	}
	wantCode(t, report("h2", restorev1.RestoreState_RESTORE_STATE_RUNNING, nil), codes.FailedPrecondition)
	wantCode(t, report("h1", restorev1.RestoreState_RESTORE_STATE_PENDING, nil), codes.InvalidArgument)
	for _, s := range []restorev1.RestoreState{restorev1.RestoreState_RESTORE_STATE_PREPARING, restorev1.RestoreState_RESTORE_STATE_BOOTING} {
		if res := report("h1", s, nil); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if res := report("h1", restorev1.RestoreState_RESTORE_STATE_RUNNING, &restorev1.Boot{Verified: true, TimeToBootMs: 6100, Signals: []string{"serial"}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if !r().Boot.Verified || r().Revision != h.index {
		t.Fatalf("boot %v revision %d (index %d)", r().Boot, r().Revision, h.index)
	}
	if got := h.st.Read(nil).Allocated("h1"); got.Vcpus != 1 || got.MemoryMib != 256 {
		t.Fatalf("allocated %v", got)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "r1", Time: at(20)})
	if r().State != restorev1.RestoreState_RESTORE_STATE_STOPPING {
		t.Fatalf("after delete: %v", r().State)
	}
	// A late RUNNING report does not undo the teardown.
	report("h1", restorev1.RestoreState_RESTORE_STATE_RUNNING, nil)
	if r().State != restorev1.RestoreState_RESTORE_STATE_STOPPING {
		t.Fatalf("late report changed state to %v", r().State)
	}
	report("h1", restorev1.RestoreState_RESTORE_STATE_DESTROYED, nil)
	if r().State != restorev1.RestoreState_RESTORE_STATE_DESTROYED || r().DestroyTime == nil {
		t.Fatalf("after destroyed: %v %v", r().State, r().DestroyTime)
	}
	if got := h.st.Read(nil).Allocated("h1"); got.Vcpus != 0 {
		t.Fatalf("capacity not released: %v", got)
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "nope"}), codes.NotFound)
	h.checkAllocation()
}

func TestDeletingAPendingRestoreDestroysItAtOnce(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r2", "req-2", restorev1.Mode_MODE_VIRTUALIZE), BodySha256: []byte("b")})
	out := h.mustApply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "r2", Time: at(5)}).(*restorev1.Restore)
	if out.State != restorev1.RestoreState_RESTORE_STATE_DESTROYED || out.DestroyTime == nil {
		t.Fatalf("got %v", out.State)
	}
	h.checkAllocation()
}

func TestExpireMarksRestoresAndSkipsFinishedOnes(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r2", "req-2", restorev1.Mode_MODE_VIRTUALIZE), BodySha256: []byte("b")})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "r2", Time: at(5)})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_EXPIRE_RESTORES, &raftv1.ExpireRestores{Ids: []string{"r1", "r2", "missing"}, Time: at(70)})
	r := h.st.Read(nil)
	if r.Restore("r1").State != restorev1.RestoreState_RESTORE_STATE_EXPIRED {
		t.Fatalf("r1: %v", r.Restore("r1").State)
	}
	if r.Restore("r2").State != restorev1.RestoreState_RESTORE_STATE_DESTROYED {
		t.Fatalf("r2 was already destroyed but became %v", r.Restore("r2").State)
	}
	if !store.NeedsTeardown(r.Restore("r1")) {
		t.Fatal("an expired restore on a host must be torn down by its agent")
	}
	h.checkAllocation()
}

func TestHostDownLosesVirtualizeAndReplacesVerify(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("v1", "req-v", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("v")})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Placements: []*raftv1.Placement{{RestoreId: "v1", HostId: "h1"}}, Time: at(4)})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{Id: "h1", State: restorev1.HostState_HOST_STATE_DOWN, Time: at(30), Reason: "no heartbeat"})
	r := h.st.Read(nil)
	if got := r.Restore("r1").State; got != restorev1.RestoreState_RESTORE_STATE_LOST {
		t.Fatalf("VIRTUALIZE restore: %v, want LOST", got)
	}
	if got := r.Restore("v1"); got.State != restorev1.RestoreState_RESTORE_STATE_PENDING || got.HostId != "" {
		t.Fatalf("VERIFY restore: %v on %q, want PENDING with no host", got.State, got.HostId)
	}
	if r.Host("h1").State != restorev1.HostState_HOST_STATE_DOWN {
		t.Fatal("host not DOWN")
	}
	// Re-registering keeps an operator's drain.
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN, &raftv1.SetHostDrain{Id: "h1", Drained: true})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: "h1", Capacity: &restorev1.Capacity{Vcpus: 4, MemoryMib: 4096}, RegisterTime: at(40)}})
	if hh := h.st.Read(nil).Host("h1"); !hh.Drained || hh.State != restorev1.HostState_HOST_STATE_READY {
		t.Fatalf("after re-register: drained=%v state=%v", hh.Drained, hh.State)
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN, &raftv1.SetHostDrain{Id: "nope"}), codes.NotFound)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{Id: "nope"}), codes.NotFound)
	h.checkAllocation()
}

func TestRecoveryPointReportsReplaceAHostsSet(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: "h2", RegisterTime: at(1)}})
	// h2 holds rp1 too, and tries to claim rp1 for another tenant under the same id: ignored.
	res := h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h2", RecoveryPoints: []*restorev1.RecoveryPoint{
		{Id: "rp1", Tenant: "acme", Asset: "web", Valid: true},
		{Id: "rp2", Tenant: "acme", Asset: "db", Valid: false, InvalidReason: "bad header"},
	}}).(*restorev1.ReportRecoveryPointsResponse)
	if res.Accepted != 2 {
		t.Fatalf("accepted %d", res.Accepted)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: []*restorev1.RecoveryPoint{
		{Id: "rp2", Tenant: "other", Asset: "db", Valid: true},
	}})
	r := h.st.Read(nil)
	if got := r.RecoveryPoint("rp1").HostIds; !cmp.Equal(got, []string{"h2"}) {
		t.Fatalf("rp1 hosts %v, want [h2] (h1 no longer reports it)", got)
	}
	if got := r.RecoveryPoint("rp2"); got.Tenant != "acme" || !cmp.Equal(got.HostIds, []string{"h2"}) {
		t.Fatalf("rp2 was taken over: %v", got)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h2"})
	if n := len(h.st.Read(nil).RecoveryPoints("")); n != 0 {
		t.Fatalf("%d recovery points left after every host dropped them", n)
	}
}

func TestRegisterServer(t *testing.T) {
	h := newHarness(t)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: &restorev1.Server{Id: "s1", GrpcAddress: "127.0.0.1:1"}})
	if h.st.Read(nil).Server("s1").GrpcAddress != "127.0.0.1:1" {
		t.Fatal("server not stored")
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func dump(st *store.Store) *raftv1.Snapshot {
	r := st.Read(nil)
	return &raftv1.Snapshot{
		Tenants: r.Tenants(), Tokens: r.Tokens(), Restores: r.Restores(""), Hosts: r.Hosts(),
		RecoveryPoints: r.RecoveryPoints(""), Servers: r.Servers(), IdempotencyKeys: r.IdempotencyKeys(),
		Verifications: r.Verifications(""), VerificationPolicies: r.VerificationPolicies(""), Guests: r.Guests(""),
	}
}

func TestSnapshotPersistRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: &restorev1.Server{Id: "s1", GrpcAddress: "127.0.0.1:1"}})
	seedVerification(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g1", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_VERIFICATION_POLICY, &raftv1.SetVerificationPolicy{Policy: &restorev1.VerificationPolicy{Id: "acme/*", Tenant: "acme", Asset: "*", IntervalSeconds: 60}})
	before := dump(h.st)
	if len(before.Verifications) != 1 {
		t.Fatalf("verifications %v", before.Verifications)
	}

	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot must not leak into it.
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "late"}})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	other := newHarness(t)
	abandoned := other.st.Abandoned()
	if err := other.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-abandoned:
	default:
		t.Fatal("watchers of the old database were not woken by the swap")
	}
	after := dump(other.st)
	if diff := cmp.Diff(before, after, protocmp.Transform()); diff != "" {
		t.Fatalf("state differs after snapshot round trip (-before +after):\n%s", diff)
	}
	if other.st.Read(nil).Tenant("late") != nil {
		t.Fatal("a write after the snapshot leaked into it")
	}
	// The restored store still enforces idempotency.
	other.index = h.index
	res := other.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r9", "req-1", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("other")})
	wantCode(t, res, codes.AlreadyExists)
}

func TestCreateRestoreKeepsAHostHintOnlyWhenItFits(t *testing.T) {
	tests := []struct {
		name      string
		hint      string
		vcpus     int32
		prepare   func(h *harness)
		wantState restorev1.RestoreState
		wantHost  string
	}{
		{"fits", "h1", 1, func(*harness) {}, restorev1.RestoreState_RESTORE_STATE_SCHEDULED, "h1"},
		{"no hint", "", 1, func(*harness) {}, restorev1.RestoreState_RESTORE_STATE_PENDING, ""},
		{"too big", "h1", 4, func(*harness) {}, restorev1.RestoreState_RESTORE_STATE_PENDING, ""},
		{"unknown host", "h9", 1, func(*harness) {}, restorev1.RestoreState_RESTORE_STATE_PENDING, ""},
		{"drained since", "h1", 1, func(h *harness) {
			h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN, &raftv1.SetHostDrain{Id: "h1", Drained: true})
		}, restorev1.RestoreState_RESTORE_STATE_PENDING, ""},
		{"down since", "h1", 1, func(h *harness) {
			h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{Id: "h1", State: restorev1.HostState_HOST_STATE_DOWN})
		}, restorev1.RestoreState_RESTORE_STATE_PENDING, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			seed(h) // r1 holds 1 of h1's 4 vCPUs
			tt.prepare(h)
			x := newRestore("r2", "req-2", restorev1.Mode_MODE_VIRTUALIZE)
			x.Vcpus, x.HostId = tt.vcpus, tt.hint
			got := h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte("b2")}).(*restorev1.Restore)
			if got.State != tt.wantState || got.HostId != tt.wantHost {
				t.Fatalf("got %v on %q, want %v on %q", got.State, got.HostId, tt.wantState, tt.wantHost)
			}
			h.checkAllocation()
		})
	}
}

// entries encodes a sequence of commands, including rejected ones.
func sequence(t *testing.T) []*raft.Log {
	t.Helper()
	cmds := []struct {
		ct  raftv1.CommandType
		msg proto.Message
	}{
		{raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme"}}},
		{raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme"}}}, // rejected
		{raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: "h1", Capacity: &restorev1.Capacity{Vcpus: 2, MemoryMib: 1024}}}},
		{raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp1", Tenant: "acme", Asset: "web", Valid: true}}}},
		{raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: func() *restorev1.Restore {
			x := newRestore("r1", "q1", restorev1.Mode_MODE_VIRTUALIZE)
			x.HostId = "h1"
			return x
		}(), BodySha256: []byte("1")}},
		{raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r2", "q1", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("2")}}, // conflict
		{raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r3", "q3", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("3")}},
		{raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Placements: []*raftv1.Placement{{RestoreId: "r3", HostId: "h1"}}}},
		{raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "nope"}}, // rejected
		{raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{Id: "h1", State: restorev1.HostState_HOST_STATE_DOWN}},
		{raftv1.CommandType_COMMAND_TYPE_EXPIRE_RESTORES, &raftv1.ExpireRestores{Ids: []string{"r3"}}},
	}
	var logs []*raft.Log
	for i, c := range cmds {
		data, err := fsm.Encode(c.ct, c.msg)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		if i == 4 {
			// raft's own entries arrive in batches too.
			logs = append(logs, &raft.Log{Index: uint64(100 + i), Type: raft.LogConfiguration})
		}
	}
	return logs
}

func codesOf(results []any) []codes.Code {
	var out []codes.Code
	for _, r := range results {
		if res, ok := r.(*fsm.Result); ok {
			out = append(out, status.Code(res.Err))
		}
	}
	return out
}

// Applying entries in batches of any size gives the state and the results
// of applying them one at a time.
func TestApplyBatchMatchesOneAtATime(t *testing.T) {
	logs := sequence(t)
	single := newHarness(t)
	var singleResults []any
	for _, l := range logs {
		singleResults = append(singleResults, single.f.Apply(l))
	}
	for _, size := range []int{1, 2, 3, len(logs)} {
		t.Run(fmt.Sprintf("batches of %d", size), func(t *testing.T) {
			h := newHarness(t)
			var results []any
			for i := 0; i < len(logs); i += size {
				results = append(results, h.f.ApplyBatch(logs[i:min(i+size, len(logs))])...)
			}
			if diff := cmp.Diff(codesOf(singleResults), codesOf(results)); diff != "" {
				t.Fatalf("results differ (-single +batched):\n%s", diff)
			}
			if diff := cmp.Diff(dump(single.st), dump(h.st), protocmp.Transform()); diff != "" {
				t.Fatalf("state differs (-single +batched):\n%s", diff)
			}
			h.checkAllocation()
		})
	}
}

// A command that fails mid-write is skipped without leaving partial writes,
// and the rest of the batch still applies.
func TestApplyBatchDropsPartialWritesOfAFailingEntry(t *testing.T) {
	logs := sequence(t)
	// A recovery point without an id fails its insert after the first one of
	// the same command was written.
	bad, err := fsm.Encode(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1",
		RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp-partial", Tenant: "acme", Asset: "x"}, {}}})
	if err != nil {
		t.Fatal(err)
	}
	logs = append(logs[:3:3], append([]*raft.Log{{Index: 50, Type: raft.LogCommand, Data: bad}}, logs[3:]...)...)
	h := newHarness(t)
	h.f.ApplyBatch(logs)
	r := h.st.Read(nil)
	if r.Tenant("acme") == nil || r.Restore("r1") == nil {
		t.Fatal("the rest of the batch was not applied")
	}
	if r.RecoveryPoint("rp-partial") != nil {
		t.Fatal("a partial write of the failed entry survived")
	}
}

// seedVerification adds VERIFY restore v1 on h1 with a PASSED verification.
func seedVerification(h *harness) *fsm.Result {
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("v1", "req-v1", restorev1.Mode_MODE_VERIFY), BodySha256: []byte("body-v1")})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Placements: []*raftv1.Placement{{RestoreId: "v1", HostId: "h1"}}, Time: at(3)})
	return h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Time: at(30), Report: &restorev1.ReportRestoreStatusRequest{
		HostId: "h1", RestoreId: "v1", State: restorev1.RestoreState_RESTORE_STATE_DESTROYED,
		Verification: &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_PASSED, Tenant: "globex", Asset: "forged", Checks: []*restorev1.Check{{Name: "screen", Result: restorev1.CheckResult_CHECK_RESULT_PASSED}}},
	}})
}

func TestVerificationsTakeTheirIdentityFromTheRestore(t *testing.T) {
	h := newHarness(t)
	seed(h)
	if res := seedVerification(h); res.Err != nil {
		t.Fatal(res.Err)
	}
	v := h.st.Read(nil).Verification("v1")
	if v == nil || v.Tenant != "acme" || v.Asset != "web" || v.RecoveryPointId != "rp1" || v.HostId != "h1" {
		t.Fatalf("stored verification %v: identity must come from the restore, not the agent", v)
	}
	if got := h.st.Read(nil).Restore("v1").Verdict; got != restorev1.Verdict_VERDICT_PASSED {
		t.Fatalf("restore verdict %v", got)
	}
	report := func(id string, v *restorev1.Verification) *fsm.Result {
		return h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Time: at(31), Report: &restorev1.ReportRestoreStatusRequest{
			HostId: "h1", RestoreId: id, State: restorev1.RestoreState_RESTORE_STATE_DESTROYED, Verification: v,
		}})
	}
	before := h.index
	wantCode(t, report("r1", &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_PASSED}), codes.FailedPrecondition) // VIRTUALIZE
	wantCode(t, report("v1", &restorev1.Verification{}), codes.InvalidArgument)                                             // no verdict
	wantCode(t, report("v1", &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_FAILED, SerialTail: strings.Repeat("x", 5000)}), codes.InvalidArgument)
	if h.index != before+3 || h.st.Read(nil).Verification("v1").Verdict != restorev1.Verdict_VERDICT_PASSED {
		t.Fatal("a refused report changed the stored verification")
	}
}

func TestGuestsAreRegisteredOnceAndUnregistered(t *testing.T) {
	h := newHarness(t)
	seed(h)
	g := &restorev1.Guest{Id: "g1", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: g})
	twin := &restorev1.Guest{Id: "g2", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: twin}), codes.AlreadyExists)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g3", Tenant: "nobody", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM}}), codes.NotFound)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g4", Tenant: "acme"}}), codes.InvalidArgument)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST, &raftv1.UnregisterGuest{Id: "g1"})
	if h.st.Read(nil).Guest("g1") != nil {
		t.Fatal("unregistered guest still stored")
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST, &raftv1.UnregisterGuest{Id: "g1"}), codes.NotFound)
}
