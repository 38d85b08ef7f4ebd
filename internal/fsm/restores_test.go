package fsm_test

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/grpc/codes"
)

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
			Report: &raftv1.RestoreReport{HostId: host, RestoreId: "r1", State: s, Boot: boot}, Time: at(10),
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
	if !lifecycle.NeedsTeardown(r.Restore("r1")) {
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

// withRestoreIn replaces the harness's state with host h1 (holding rp1) and
// restore r1 placed on it in state s, as a raft snapshot would install it.
func withRestoreIn(t *testing.T, s restorev1.RestoreState) *harness {
	t.Helper()
	h := newHarness(t)
	x := newRestore("r1", "req-1", restorev1.Mode_MODE_VIRTUALIZE)
	x.State, x.HostId, x.StateReason = s, "h1", "seeded"
	host := &restorev1.Host{Id: "h1", State: restorev1.HostState_HOST_STATE_READY,
		Capacity: &restorev1.Capacity{Vcpus: 4, MemoryMib: 4096}, Allocated: &restorev1.Capacity{}}
	if lifecycle.HoldsCapacity(x) {
		host.Allocated = lifecycle.Demand(x)
	}
	db, err := fsm.BuildDB(&raftv1.Snapshot{Hosts: []*restorev1.Host{host}, Restores: []*restorev1.Restore{x},
		RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp1", Tenant: "acme", Asset: "web", Valid: true, HostIds: []string{"h1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	h.st.Swap(db)
	return h
}

// Every state a restore can be in, times every state an agent could put in
// a report: the FSM's answer is the lifecycle table's row, or a refusal
// when it has none, and nothing else.
func TestAgentReportsAreDecidedByTheLifecycleTableAlone(t *testing.T) {
	for _, from := range lifecycle.States() {
		for n := range restorev1.RestoreState_name {
			reported := restorev1.RestoreState(n)
			t.Run(from.String()+"/"+reported.String(), func(t *testing.T) {
				h := withRestoreIn(t, from)
				res := h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{
					Report: &raftv1.RestoreReport{HostId: "h1", RestoreId: "r1", State: reported, StateReason: "agent says so"},
					Time:   at(10),
				})
				got := h.st.Read(nil).Restore("r1")
				row, ok := lifecycle.AgentReport(from, reported)
				if !ok {
					if res.Err == nil {
						t.Fatalf("accepted without a row in the table; now %s", got.State)
					}
					if got.State != from || got.DestroyTime != nil {
						t.Fatalf("a refused report changed the restore to %s", got.State)
					}
					return
				}
				if res.Err != nil {
					t.Fatalf("the table allows it but the FSM refused: %v", res.Err)
				}
				if got.State != row.After() {
					t.Errorf("state %s, the table says %s", got.State, row.After())
				}
				if (got.DestroyTime != nil) != row.TornDown {
					t.Errorf("destroy_time set = %v, the table says torn down = %v", got.DestroyTime != nil, row.TornDown)
				}
				h.checkAllocation()
			})
		}
	}
}

// A placement is checked against capacity in the FSM whatever decided it:
// two placements that each fit alone but not together keep the second
// PENDING.
func TestPlacementsAreCheckedAgainstCapacityInTheFSM(t *testing.T) {
	h := newHarness(t)
	seed(h) // r1 (1 vCPU, 256 MiB) on h1 (4 vCPUs, 4096 MiB)
	big := func(id string) *restorev1.Restore {
		x := newRestore(id, "req-"+id, restorev1.Mode_MODE_VIRTUALIZE)
		x.Vcpus, x.MemoryMib = 2, 2048
		return x
	}
	for _, id := range []string{"b1", "b2"} {
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: big(id), BodySha256: []byte(id)})
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Time: at(5), Placements: []*raftv1.Placement{
		{RestoreId: "b1", HostId: "h1"}, {RestoreId: "b2", HostId: "h1"},
	}})
	r := h.st.Read(nil)
	if s := r.Restore("b1").State; s != lifecycle.Scheduled {
		t.Fatalf("b1 %s, want SCHEDULED", s)
	}
	if s := r.Restore("b2").State; s != lifecycle.Pending {
		t.Fatalf("b2 %s, want PENDING: h1 has 1 vCPU left", s)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Time: at(6), Placements: []*raftv1.Placement{{RestoreId: "b2", HostId: "nope"}}})
	if s := h.st.Read(nil).Restore("b2").State; s != lifecycle.Pending {
		t.Fatalf("b2 placed on a host that does not exist: %s", s)
	}
	h.checkAllocation()
}

// Progress is kept while PREPARING and gone after; an export is kept while
// RUNNING and gone once the restore ends.
func TestProgressAndExportLiveAsLongAsTheirState(t *testing.T) {
	h := newHarness(t)
	seed(h)
	r := func() *restorev1.Restore { return h.st.Read(nil).Restore("r1") }
	report := func(rep *raftv1.RestoreReport) {
		t.Helper()
		rep.HostId, rep.RestoreId = "h1", "r1"
		if res := h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Report: rep, Time: at(10)}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	report(&raftv1.RestoreReport{State: restorev1.RestoreState_RESTORE_STATE_PREPARING, Progress: &restorev1.Progress{Step: "uploading", DoneBytes: 1, TotalBytes: 2}})
	if r().GetProgress().GetDoneBytes() != 1 {
		t.Fatalf("progress while PREPARING: %v", r().Progress)
	}
	exp := &restorev1.RestoreExport{Disks: []*restorev1.ExportDisk{{Name: "disk0", NbdUri: "nbds://127.0.0.1:10809/x"}}}
	report(&raftv1.RestoreReport{State: restorev1.RestoreState_RESTORE_STATE_RUNNING, Export: exp})
	if r().Progress != nil || len(r().GetExport().GetDisks()) != 1 {
		t.Fatalf("RUNNING: progress %v export %v", r().Progress, r().Export)
	}
	report(&raftv1.RestoreReport{State: restorev1.RestoreState_RESTORE_STATE_FAILED, StateReason: "the daemon died"})
	if r().Export != nil {
		t.Fatalf("a FAILED restore still lists its export: %v", r().Export)
	}
}
