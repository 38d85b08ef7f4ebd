package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"
)

func TestEveryCommandHasAnApplyFunction(t *testing.T) {
	for n, name := range raftv1.CommandType_name {
		if n == 0 {
			continue
		}
		h := newHarness(t)
		h.apply(raftv1.CommandType(n), &raftv1.CreateTenant{})
		if h.f.Halted() != nil {
			t.Errorf("%s has no apply function: %v", name, h.f.Halted())
		}
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

func TestSnapshotPersistRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: &restorev1.Server{Id: "s1", GrpcAddress: "127.0.0.1:1"}})
	seedVerification(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g1", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_VERIFICATION_POLICY, &raftv1.SetVerificationPolicy{Policy: &restorev1.VerificationPolicy{Id: "acme/*", Tenant: "acme", Asset: "*", IntervalSeconds: 60}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: &restorev1.Snapshot{Id: "s1", Tenant: "acme", GuestId: "g1", RequestId: "snap-1"}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_JOIN_TOKEN, &raftv1.CreateJoinToken{Token: &raftv1.StoredJoinToken{
		Token: &restorev1.JoinToken{Id: "jt-1", HostId: "h2", CreateTime: at(1), ExpireTime: at(3600)}, SecretSha256: []byte{9}}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: "h3", Capacity: &restorev1.Capacity{Vcpus: 1, MemoryMib: 128}}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST, &raftv1.RemoveHost{Id: "h3", Time: at(7)})
	before := h.st.Read(nil).Dump()
	// Every table holds something, so the comparison below covers them all.
	fields := before.ProtoReflect().Descriptor().Fields()
	if before.AppliedIndex != h.index {
		t.Fatalf("the snapshot says it holds entries through %d, the last applied is %d", before.AppliedIndex, h.index)
	}
	for i := 0; i < fields.Len(); i++ {
		if !fields.Get(i).IsList() {
			continue
		}
		if before.ProtoReflect().Get(fields.Get(i)).List().Len() == 0 {
			t.Fatalf("the seeded state has nothing in %s: the round trip would not test it", fields.Get(i).Name())
		}
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
	other.checkAllocation() // the derived tables (counts, usage) are rebuilt
	select {
	case <-abandoned:
	default:
		t.Fatal("watchers of the old database were not woken by the swap")
	}
	after := other.st.Read(nil).Dump()
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

// eventLog lists every event the store keeps, of every kind.
func eventLog(t *testing.T, st *store.Store) []string {
	t.Helper()
	var out []string
	for k := store.KindRestore; k <= store.KindAudit; k++ {
		evs, err := st.Read(nil).EventsAfter(k, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			out = append(out, fmt.Sprintf("%d %s %d %s", k, ev.Version, ev.Type, ev.Object.(interface{ GetId() string }).GetId()))
		}
	}
	if len(out) == 0 {
		t.Fatal("no events at all")
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
			if diff := cmp.Diff(single.st.Read(nil).Dump(), h.st.Read(nil).Dump(), protocmp.Transform()); diff != "" {
				t.Fatalf("state differs (-single +batched):\n%s", diff)
			}
			// The watch events too, version for version: a watch resumes
			// on any server whatever its batches were.
			if diff := cmp.Diff(eventLog(t, single.st), eventLog(t, h.st)); diff != "" {
				t.Fatalf("events differ (-single +batched):\n%s", diff)
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
	return h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Time: at(30), Report: &raftv1.RestoreReport{
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
		return h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Time: at(31), Report: &raftv1.RestoreReport{
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
