package scheduler

import (
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestPoliciesVerifyTheNewestRecoveryPointOncePerIntervalWithinHostLimits(t *testing.T) {
	w := newWorld(t)
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme"}})
	rps := func(ids ...string) []*restorev1.RecoveryPoint {
		var out []*restorev1.RecoveryPoint
		for i, id := range ids {
			asset := "a"
			if id == "rp-b" {
				asset = "b"
			}
			out = append(out, &restorev1.RecoveryPoint{Id: id, Tenant: "acme", Asset: asset, Valid: true, CreateTime: timestamppb.New(t0.Add(time.Duration(i) * time.Hour))})
		}
		return out
	}
	for _, h := range []string{"h1", "h2"} {
		w.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: h, State: restorev1.HostState_HOST_STATE_READY, Capacity: &restorev1.Capacity{Vcpus: 8, MemoryMib: 8192}}})
	}
	w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: rps("rp-old", "rp-new", "rp-b")})
	w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h2", RecoveryPoints: rps("rp-old", "rp-new")})
	now := t0.Add(10 * time.Hour)
	runs := func(at time.Time) []*restorev1.Restore { return PolicyRuns(w.st.Read(nil), at) }

	if got := runs(now); len(got) != 0 {
		t.Fatalf("no policy, but runs %v", got)
	}
	w.apply(raftv1.CommandType_COMMAND_TYPE_SET_VERIFICATION_POLICY, &raftv1.SetVerificationPolicy{Policy: &restorev1.VerificationPolicy{
		Id: "acme/*", Tenant: "acme", Asset: "*", IntervalSeconds: 3600, MaxPerHost: 1}})
	got := runs(now)
	if len(got) != 2 || got[0].RecoveryPointId != "rp-b" || got[1].RecoveryPointId != "rp-new" {
		t.Fatalf("want the newest of b (one holder, chooses first) and of a, got %v", got)
	}
	if got[0].HostId != "h1" || got[1].HostId != "h2" {
		t.Fatalf("rp-b is only on h1 and h1 takes one run at a time: hosts %s, %s", got[0].HostId, got[1].HostId)
	}
	if got[1].RequestId != PolicyRequestPrefix+"rp-new" || got[1].PolicyId != "acme/*" || got[1].Mode != restorev1.Mode_MODE_VERIFY {
		t.Fatalf("run %v", got[1])
	}
	for i, x := range got {
		x.Id = []string{"v-b", "v-a"}[i]
		w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte(x.Id)})
	}
	if got := runs(now); len(got) != 0 {
		t.Fatalf("runs under way, yet %v", got)
	}
	// The runs end; rp-new was verified. An asset's own policy wins over "*".
	for _, id := range []string{"v-a", "v-b"} {
		x := w.st.Read(nil).Restore(id)
		w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Report: &raftv1.RestoreReport{
			HostId: x.HostId, RestoreId: id, State: restorev1.RestoreState_RESTORE_STATE_DESTROYED,
			Verification: &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_PASSED, TimeToBootMs: 8000},
		}})
	}
	if v := w.st.Read(nil).Verification("v-a"); v == nil || v.PolicyId != "acme/*" {
		t.Fatalf("the verification does not name its policy: %v", v)
	}
	if got := runs(now.Add(48 * time.Hour)); len(got) != 0 {
		t.Fatalf("verified recovery points were verified again: %v", got)
	}
	// A newer recovery point: verified once the interval since the last run passed.
	w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h2", RecoveryPoints: append(rps("rp-old", "rp-new"),
		&restorev1.RecoveryPoint{Id: "rp-newest", Tenant: "acme", Asset: "a", Valid: true, CreateTime: timestamppb.New(t0.Add(20 * time.Hour))})})
	if got := runs(now.Add(30 * time.Minute)); len(got) != 0 {
		t.Fatalf("within the interval, yet %v", got)
	}
	if got := runs(now.Add(2 * time.Hour)); len(got) != 1 || got[0].RecoveryPointId != "rp-newest" || got[0].HostId != "h2" {
		t.Fatalf("after the interval: %v", got)
	}
}

func TestVerificationsPastTheirRetentionArePruned(t *testing.T) {
	w := newWorld(t)
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "acme"}})
	w.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: "h1", State: restorev1.HostState_HOST_STATE_READY, Capacity: &restorev1.Capacity{Vcpus: 8, MemoryMib: 8192}}})
	w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp", Tenant: "acme", Asset: "a", Valid: true}}})
	for i, id := range []string{"v-old", "v-new"} {
		w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: &restorev1.Restore{
			Id: id, Tenant: "acme", RecoveryPointId: "rp", Mode: restorev1.Mode_MODE_VERIFY, Vcpus: 1, MemoryMib: 128, RequestId: id, HostId: "h1",
			State: restorev1.RestoreState_RESTORE_STATE_PENDING}, BodySha256: []byte(id)})
		w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{Report: &raftv1.RestoreReport{
			HostId: "h1", RestoreId: id, State: restorev1.RestoreState_RESTORE_STATE_DESTROYED,
			Verification: &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_PASSED, EndTime: timestamppb.New(t0.Add(time.Duration(i) * 48 * time.Hour))},
		}})
	}
	now := t0.Add(72 * time.Hour)
	if got := ExpiredVerifications(w.st.Read(nil), now, 0); got != nil {
		t.Fatalf("retention 0 keeps everything, got %v", got)
	}
	got := ExpiredVerifications(w.st.Read(nil), now, 48*time.Hour)
	if len(got) != 1 || got[0] != "v-old" {
		t.Fatalf("expired %v, want [v-old]", got)
	}
	w.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE_VERIFICATIONS, &raftv1.PruneVerifications{Ids: append(got, "v-gone-already")})
	if w.st.Read(nil).Verification("v-old") != nil || w.st.Read(nil).Verification("v-new") == nil {
		t.Fatal("prune removed the wrong verifications")
	}
}
