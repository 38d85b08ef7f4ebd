package fsm_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// BenchmarkApplyCreateRestore is the state machine's share of one restore
// create (what every server does for each, leader and followers), applied
// in raft's batches of 64: decode, checks, the restore with its indexes,
// the host's allocation, the idempotency key, the audit record and the
// watch events.
func BenchmarkApplyCreateRestore(b *testing.B) {
	h := newHarness(&testing.T{})
	seed(h)
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{
		Id: "h1", Accelerator: "tcg", Capacity: &restorev1.Capacity{Vcpus: 1 << 30, MemoryMib: 1 << 50}, RegisterTime: at(1),
	}})
	ac := &raftv1.AuditContext{Caller: "token:tok-1", Tenant: "acme", Role: "partner", Method: "/restore.v1.RestoreService/CreateRestore", ServerId: "s1", Time: at(5)}
	logs := make([]*raft.Log, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := newRestore(fmt.Sprintf("b-%09d", i), fmt.Sprintf("q-%09d", i), restorev1.Mode_MODE_VIRTUALIZE)
		x.HostId, x.State = "h1", restorev1.RestoreState_RESTORE_STATE_SCHEDULED
		data, err := fsm.EncodeAs(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte("x")}, ac)
		if err != nil {
			b.Fatal(err)
		}
		h.index++
		logs = append(logs, &raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
		if len(logs) == cap(logs) || i == b.N-1 {
			for _, r := range h.f.ApplyBatch(logs) {
				if res := r.(*fsm.Result); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
			logs = logs[:0]
		}
	}
}
