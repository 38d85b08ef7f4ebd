package fsm_test

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/grpc/codes"
)

func report(h *harness, host string, s *restorev1.Snapshot) *restorev1.Snapshot {
	return h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_SNAPSHOT_STATUS, &raftv1.ReportSnapshotStatus{HostId: host, Snapshot: s, Time: at(5)}).(*restorev1.Snapshot)
}

// A snapshot goes REQUESTED → PREPARING → READY → RELEASED; only a
// completed backup's checkpoint becomes the guest's base; one active
// snapshot per guest; late reports never move it back.
func TestSnapshotLifecycleRecordsTheBaseOnlyAfterACompletedBackup(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g1", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}})
	create := func(id, req string) *restorev1.Snapshot {
		return h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{
			Snapshot: &restorev1.Snapshot{Id: id, Tenant: "acme", GuestId: "g1", RequestId: req}, BodySha256: []byte(req)}).(*restorev1.Snapshot)
	}
	s1 := create("s1", "r1")
	if s1.State != restorev1.SnapshotState_SNAPSHOT_STATE_REQUESTED || s1.HostId != "h1" {
		t.Fatalf("created %v on %q", s1.State, s1.HostId)
	}
	if again := create("s1-retry", "r1"); again.Id != "s1" {
		t.Fatalf("a retried request made %s", again.Id)
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{
		Snapshot: &restorev1.Snapshot{Id: "s2", Tenant: "acme", GuestId: "g1"}}), codes.FailedPrecondition)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST, &raftv1.UnregisterGuest{Id: "g1"}), codes.FailedPrecondition)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{
		Snapshot: &restorev1.Snapshot{Id: "s3", Tenant: "globex", GuestId: "g1"}}), codes.NotFound)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_SNAPSHOT_STATUS, &raftv1.ReportSnapshotStatus{
		HostId: "h2", Snapshot: &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_READY}}), codes.NotFound)

	report(h, "h1", &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_PREPARING})
	ready := report(h, "h1", &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_READY, CheckpointId: "restored-s1",
		Kind: restorev1.SnapshotKind_SNAPSHOT_KIND_FULL, Disks: []*restorev1.SnapshotDisk{{Name: "vda", Size: 1 << 30}}})
	if ready.State != restorev1.SnapshotState_SNAPSHOT_STATE_READY || ready.CheckpointId != "restored-s1" || ready.ReadyTime == nil {
		t.Fatalf("ready: %v", ready)
	}
	if late := report(h, "h1", &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_PREPARING}); late.State != restorev1.SnapshotState_SNAPSHOT_STATE_READY {
		t.Fatalf("a late PREPARING moved it back to %v", late.State)
	}
	rel := h.mustApply(raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS, &raftv1.ReleaseSnapshots{Ids: []string{"s1"}, Reason: "done", BackupCompleted: true}).(*restorev1.Snapshot)
	if !rel.ReleaseRequested || !rel.BackupCompleted {
		t.Fatalf("release: %v", rel)
	}
	if g := h.st.Read(nil).Guest("g1"); g.BaseCheckpointId != "" {
		t.Fatalf("the base was recorded before the host released: %v", g)
	}
	report(h, "h1", &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED})
	if g := h.st.Read(nil).Guest("g1"); g.BaseSnapshotId != "s1" || g.BaseCheckpointId != "restored-s1" {
		t.Fatalf("guest base after a completed backup: %v", g)
	}

	// A job that did not complete (lease ran out) leaves the base alone.
	create("s4", "")
	report(h, "h1", &restorev1.Snapshot{Id: "s4", State: restorev1.SnapshotState_SNAPSHOT_STATE_READY, CheckpointId: "restored-s4"})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS, &raftv1.ReleaseSnapshots{Ids: []string{"s4"}, Reason: "the lease ran out"})
	done := report(h, "h1", &restorev1.Snapshot{Id: "s4", State: restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED})
	if done.State != restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED || done.StateReason != "the lease ran out" || done.ReleaseTime == nil {
		t.Fatalf("released: %v", done)
	}
	if g := h.st.Read(nil).Guest("g1"); g.BaseSnapshotId != "s1" {
		t.Fatalf("an unfinished backup became the base: %v", g)
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS, &raftv1.ReleaseSnapshots{Ids: []string{"nope"}}), codes.NotFound)
	h.checkAllocation() // the usage kept counts only the snapshots not yet released
}
