package fsm_test

import (
	"fmt"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/grpc/codes"
)

func batch(id string, n int, hint string) *raftv1.CreateRestores {
	cmd := &raftv1.CreateRestores{BatchId: id}
	for i := 0; i < n; i++ {
		x := newRestore(fmt.Sprintf("%s-%d", id, i), fmt.Sprintf("req-%s#%d", id, i), restorev1.Mode_MODE_VIRTUALIZE)
		x.HostId = hint
		cmd.Items = append(cmd.Items, &raftv1.CreateRestore{Restore: x, BodySha256: []byte("batch " + id)})
	}
	return cmd
}

// A batch is all or none: one item over the quota refuses the whole
// batch and writes nothing; a replay answers the first batch; the same
// request ids with another body are a conflict; hints are kept while the
// host fits, with the batch's earlier items counted.
func TestABatchOfRestoresIsAllOrNone(t *testing.T) {
	h := newHarness(t)
	seed(h) // r1: 1 vCPU of h1's 4
	setQuota(h, &restorev1.TenantQuota{MaxRestores: 4})
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, batch("b0", 4, "")), codes.ResourceExhausted)
	for i := 0; i < 4; i++ {
		if h.st.Read(nil).Restore(fmt.Sprintf("b0-%d", i)) != nil {
			t.Fatalf("a refused batch stored item %d", i)
		}
	}
	setQuota(h, &restorev1.TenantQuota{})

	out := h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, batch("b1", 5, "h1")).(*restorev1.BatchCreateRestoresResponse)
	if out.BatchId != "b1" || len(out.Restores) != 5 {
		t.Fatalf("batch: %v", out)
	}
	states := map[restorev1.RestoreState]int{}
	for _, x := range out.Restores {
		if x.BatchId != "b1" {
			t.Fatalf("%s has batch %q", x.Id, x.BatchId)
		}
		states[x.State]++
	}
	// h1 has 3 vCPUs free: three hints kept, two left to the scheduler.
	if states[restorev1.RestoreState_RESTORE_STATE_SCHEDULED] != 3 || states[restorev1.RestoreState_RESTORE_STATE_PENDING] != 2 {
		t.Fatalf("states %v", states)
	}
	h.checkAllocation()

	again := h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, batch("b1", 5, "h1")).(*restorev1.BatchCreateRestoresResponse)
	if len(again.Restores) != 5 || again.Restores[4].Id != "b1-4" || again.Restores[0].Revision != out.Restores[0].Revision {
		t.Fatalf("a replay made new restores: %v", again)
	}
	other := batch("b1", 5, "")
	other.Items[2].BodySha256 = []byte("another body")
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, other), codes.AlreadyExists)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, batch("b1", 6, "")), codes.AlreadyExists)
	if h.st.Read(nil).Restore("b1-5") != nil {
		t.Fatal("a batch with one item more than its first stored it")
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, &raftv1.CreateRestores{BatchId: "empty"}), codes.InvalidArgument)
}
