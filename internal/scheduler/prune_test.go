package scheduler

import (
	"fmt"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/trend"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A history of 100,000 restores that ended 40 days ago (with their
// idempotency keys, and a verification for every hundredth), 1,000 that
// ended yesterday and 10 that still run.
func bigHistory(t *testing.T, now time.Time) *world {
	t.Helper()
	w := newWorld(t)
	old, recent := timestamppb.New(now.Add(-40*24*time.Hour)), timestamppb.New(now.Add(-24*time.Hour))
	snap := &raftv1.Snapshot{
		Hosts: []*restorev1.Host{{Id: "h1", State: restorev1.HostState_HOST_STATE_READY, Capacity: &restorev1.Capacity{Vcpus: 64, MemoryMib: 1 << 20},
			Allocated: &restorev1.Capacity{Vcpus: 10, MemoryMib: 2560}}},
		RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp", Tenant: "acme", Asset: "web", Valid: true, HostIds: []string{"h1"}}},
	}
	add := func(id string, state restorev1.RestoreState, ended *timestamppb.Timestamp) {
		x := &restorev1.Restore{Id: id, Tenant: "acme", Asset: "web", RecoveryPointId: "rp", Mode: restorev1.Mode_MODE_VERIFY, HostId: "h1",
			Vcpus: 1, MemoryMib: 256, State: state, UpdateTime: ended, RequestId: id, CreateTime: ended,
			ExpireTime: timestamppb.New(now.Add(time.Hour))}
		if lifecycle.Terminal(state) {
			x.DestroyTime = ended
		}
		snap.Restores = append(snap.Restores, x)
		snap.IdempotencyKeys = append(snap.IdempotencyKeys, &raftv1.IdempotencyKey{Kind: fsm.IdempotencyKindRestore, Tenant: "acme", RequestId: id, ObjectId: id, CreateTime: ended})
	}
	for i := range 100_000 {
		id := fmt.Sprintf("old-%06d", i)
		add(id, lifecycle.Destroyed, old)
		if i%100 == 0 {
			snap.Verifications = append(snap.Verifications, &restorev1.Verification{Id: id, Tenant: "acme", Asset: "web", RecoveryPointId: "rp",
				Verdict: restorev1.Verdict_VERDICT_PASSED, TimeToBootMs: 7000, EndTime: old})
		}
	}
	for i := range 1000 {
		add(fmt.Sprintf("recent-%04d", i), lifecycle.Failed, recent)
	}
	for i := range 10 {
		add(fmt.Sprintf("live-%02d", i), lifecycle.Running, recent)
	}
	db, err := fsm.BuildDB(snap)
	if err != nil {
		t.Fatal(err)
	}
	w.st.Swap(db)
	return w
}

func TestHundredThousandEndedRestoresArePrunedAndTheirVerificationsKept(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := bigHistory(t, now)
	passes := 0
	for cmd := PruneDue(w.st.Read(nil), now, DefaultRetention); cmd != nil; cmd = PruneDue(w.st.Read(nil), now, DefaultRetention) {
		if len(cmd.RestoreIds) > pruneBatch || len(cmd.IdempotencyKeys) > pruneBatch {
			t.Fatalf("a prune command of %d restores, %d keys: over the batch", len(cmd.RestoreIds), len(cmd.IdempotencyKeys))
		}
		w.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE, cmd)
		if passes++; passes > 1000 {
			t.Fatal("pruning does not end")
		}
	}
	r := w.st.Read(nil)
	if n := len(r.Restores("")); n != 1010 {
		t.Fatalf("%d restores left, want the 1,000 recent and 10 running", n)
	}
	if r.Restore("old-000000") != nil || r.Restore("recent-0000") == nil || r.Restore("live-00") == nil {
		t.Fatal("pruned the wrong restores")
	}
	if n := len(r.IdempotencyKeys()); n != 1010 {
		t.Fatalf("%d idempotency keys left, want the 1010 of the last 24 h", n)
	}
	// The verification history and the RTO trend outlive the restores.
	vs := r.Verifications("acme")
	if len(vs) != 1000 {
		t.Fatalf("%d verifications left, want all 1000", len(vs))
	}
	if tr := trend.Compute("acme", "web", vs, trend.DefaultLastN); tr.Runs == 0 || tr.TimeToBootP50Ms != 7000 {
		t.Fatalf("trend after pruning: %+v", tr)
	}
	if got := r.RestoreCounts()[lifecycle.Destroyed]; got != 0 {
		t.Fatalf("metrics count %d DESTROYED restores after pruning", got)
	}
	t.Logf("pruned 100,000 restores and their keys in %d raft entries", passes)
}

// With 100,000 ended restores not yet due and a few that are, a leader
// pass reads only the due ones.
func TestALeaderPassReadsOnlyWhatIsDue(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := bigHistory(t, base) // 100,000 ended 40 days before base, 1,000 a day before
	keep := Retention{Restores: 30 * 24 * time.Hour}
	early := base.Add(-11 * 24 * time.Hour) // nothing is 30 days old yet
	r := w.st.Read(nil)
	if cmd := PruneDue(r, early, keep); cmd != nil || r.Visited() != 0 {
		t.Fatalf("nothing is due, yet the pass read %d objects (prune %v)", r.Visited(), cmd != nil)
	}
	r = w.st.Read(nil)
	if ids := ExpiredRestores(r, early); len(ids) != 0 || r.Visited() != 0 {
		t.Fatalf("no lease has run out, yet the pass read %d objects", r.Visited())
	}
	// The ten running restores' leases run out: the pass reads those ten.
	r = w.st.Read(nil)
	if ids := ExpiredRestores(r, base.Add(2*time.Hour)); len(ids) != 10 || r.Visited() != 10 {
		t.Fatalf("expired %d, read %d objects; want 10 and 10", len(ids), r.Visited())
	}
	// 100,000 are due: one batch is read.
	r = w.st.Read(nil)
	cmd := PruneDue(r, base.Add(-9*24*time.Hour), keep)
	if cmd == nil || len(cmd.RestoreIds) != pruneBatch || r.Visited() != pruneBatch {
		t.Fatalf("a prune pass read %d objects; want one batch of %d", r.Visited(), pruneBatch)
	}
	// Placement reads only PENDING restores (none).
	r = w.st.Read(nil)
	if Plan(r); r.Visited() != 0 {
		t.Fatalf("placement read %d objects with nothing pending", r.Visited())
	}
}

// A guest's base snapshot, a bootstrap token and an object that changed
// after the leader looked are never pruned.
func TestPruneKeepsWhatIsStillNeeded(t *testing.T) {
	w := newWorld(t)
	long := timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	snap := &raftv1.Snapshot{
		Guests: []*restorev1.Guest{{Id: "g1", Tenant: "acme", BaseSnapshotId: "base"}},
		Snapshots: []*restorev1.Snapshot{
			{Id: "base", Tenant: "acme", GuestId: "g1", State: lifecycle.SnapReleased, ReleaseTime: long},
			{Id: "older", Tenant: "acme", GuestId: "g1", State: lifecycle.SnapReleased, ReleaseTime: long},
		},
		Restores: []*restorev1.Restore{
			{Id: "fresh", State: lifecycle.Destroyed, UpdateTime: timestamppb.New(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)), DestroyTime: long},
			{Id: "stopping", State: lifecycle.Stopping, HostId: "h1", UpdateTime: long},
		},
		Tokens: []*raftv1.StoredToken{
			{Token: &restorev1.Token{Id: "boot", RevokeTime: long}, Bootstrap: true},
			{Token: &restorev1.Token{Id: "gone", RevokeTime: long}},
		},
	}
	db, err := fsm.BuildDB(snap)
	if err != nil {
		t.Fatal(err)
	}
	w.st.Swap(db)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cmd := PruneDue(w.st.Read(nil), now, DefaultRetention)
	if len(cmd.TokenIds) != 1 || cmd.TokenIds[0] != "gone" {
		t.Fatalf("tokens to prune %v: never the bootstrap token", cmd.TokenIds)
	}
	cmd.TokenIds = append(cmd.TokenIds, "boot") // as if a buggy leader asked
	w.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE, cmd)
	r := w.st.Read(nil)
	if r.Snapshot("base") == nil || r.Snapshot("older") != nil {
		t.Fatalf("base kept %v, older pruned %v", r.Snapshot("base") != nil, r.Snapshot("older") == nil)
	}
	if r.Token("boot") == nil || r.Token("gone") != nil {
		t.Fatal("the bootstrap token was pruned, or the revoked one kept")
	}
	// Restores the leader saw ended but that changed since, or that are
	// still to be torn down, stay whatever the command says.
	w.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE, &raftv1.Prune{RestoreIds: []string{"fresh", "stopping", "nope"},
		RestoresBefore: timestamppb.New(now.Add(-24 * time.Hour))})
	if r := w.st.Read(nil); r.Restore("fresh") == nil || r.Restore("stopping") == nil {
		t.Fatal("pruned a restore that is not past its retention or not ended")
	}
}
