package fsm_test

import (
	"fmt"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/grpc/codes"
)

func setQuota(h *harness, q *restorev1.TenantQuota) {
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_SET_TENANT_QUOTA, &raftv1.SetTenantQuota{TenantId: "acme", Quota: q})
}

// The quota is the state machine's: creates that each passed the API's
// check (racing) are applied one after the other, and the one that would
// exceed a limit is refused with RESOURCE_EXHAUSTED, writing nothing.
func TestTheQuotaHoldsAgainstRacingCreates(t *testing.T) {
	cases := []struct {
		name  string
		quota *restorev1.TenantQuota
		vcpus int32
		mem   int64
		// seed's r1 (1 vCPU, 256 MiB) is active; this many more fit.
		fit  int
		says string
	}{
		{"restores", &restorev1.TenantQuota{MaxRestores: 3}, 1, 256, 2, "3 restores"},
		{"vCPUs", &restorev1.TenantQuota{MaxVcpus: 5}, 2, 256, 2, "5 vCPUs"},
		{"memory", &restorev1.TenantQuota{MaxMemoryMib: 1024}, 1, 384, 2, "1024 MiB of memory"},
		{"no limit", &restorev1.TenantQuota{}, 1, 256, 10, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			seed(h)
			setQuota(h, c.quota)
			for i := 0; i < 10; i++ {
				x := newRestore(fmt.Sprintf("q%d", i), fmt.Sprintf("req-q%d", i), restorev1.Mode_MODE_VERIFY)
				x.Vcpus, x.MemoryMib = c.vcpus, c.mem
				res := h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte(x.Id)})
				switch {
				case i < c.fit && res.Err != nil:
					t.Fatalf("create %d within the quota: %v", i, res.Err)
				case i >= c.fit && c.says != "":
					wantCode(t, res, codes.ResourceExhausted)
					if !strings.Contains(res.Err.Error(), c.says) {
						t.Fatalf("refusal %q does not name %q", res.Err, c.says)
					}
					if h.st.Read(nil).Restore(x.Id) != nil {
						t.Fatal("a refused create stored its restore")
					}
				}
			}
			h.checkAllocation()
		})
	}
}

// An ended restore gives its share back; lowering the quota below what
// is held ends nothing, it only refuses new ones.
func TestEndedRestoresFreeTheQuotaAndALowerQuotaEndsNothing(t *testing.T) {
	h := newHarness(t)
	seed(h)
	setQuota(h, &restorev1.TenantQuota{MaxRestores: 1})
	x := newRestore("q1", "req-q1", restorev1.Mode_MODE_VERIFY)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte("q1")}), codes.ResourceExhausted)
	if got := h.st.Read(nil).Restore("r1"); got == nil || got.State == restorev1.RestoreState_RESTORE_STATE_FAILED {
		t.Fatalf("the quota touched the restore it already held: %v", got)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "r1", Time: at(10)})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{
		Report: &raftv1.RestoreReport{HostId: "h1", RestoreId: "r1", State: restorev1.RestoreState_RESTORE_STATE_DESTROYED}, Time: at(11)})
	if u := h.st.Read(nil).TenantUsage("acme"); u.Restores != 0 || u.Vcpus != 0 {
		t.Fatalf("usage after the teardown: %v", u)
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte("q1")})
}

func TestTheSnapshotQuotaCountsSnapshotsNotYetReleased(t *testing.T) {
	h := newHarness(t)
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g1", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "web"}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: &restorev1.Guest{Id: "g2", Tenant: "acme", Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: "h1", Name: "db"}})
	setQuota(h, &restorev1.TenantQuota{MaxSnapshots: 1})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: &restorev1.Snapshot{Id: "s1", Tenant: "acme", GuestId: "g1"}})
	res := h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: &restorev1.Snapshot{Id: "s2", Tenant: "acme", GuestId: "g2"}})
	wantCode(t, res, codes.ResourceExhausted)
	report(h, "h1", &restorev1.Snapshot{Id: "s1", State: restorev1.SnapshotState_SNAPSHOT_STATE_FAILED, StateReason: "test"})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: &restorev1.Snapshot{Id: "s2", Tenant: "acme", GuestId: "g2"}})
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_SET_TENANT_QUOTA, &raftv1.SetTenantQuota{TenantId: "nope", Quota: &restorev1.TenantQuota{}}), codes.NotFound)
}
