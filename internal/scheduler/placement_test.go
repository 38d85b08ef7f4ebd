package scheduler

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

type world struct {
	t  *testing.T
	st *store.Store
	f  *fsm.FSM
	i  uint64
}

func newWorld(t *testing.T) *world {
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, st: st, f: fsm.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

func (w *world) apply(ct raftv1.CommandType, m proto.Message) {
	w.t.Helper()
	data, err := fsm.Encode(ct, m)
	if err != nil {
		w.t.Fatal(err)
	}
	w.i++
	if res := w.f.Apply(&raft.Log{Index: w.i, Type: raft.LogCommand, Data: data}).(*fsm.Result); res.Err != nil {
		w.t.Fatal(res.Err)
	}
}

func (w *world) host(id string, vcpus int32, mem int64, rps ...string) {
	w.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: &restorev1.Host{Id: id, Capacity: &restorev1.Capacity{Vcpus: vcpus, MemoryMib: mem}}})
	var list []*restorev1.RecoveryPoint
	for _, rp := range rps {
		list = append(list, &restorev1.RecoveryPoint{Id: rp, Tenant: "acme", Asset: "a", Valid: true})
	}
	w.apply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: id, RecoveryPoints: list})
}

func (w *world) restore(id, rp string, vcpus int32, mem int64) {
	w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: &restorev1.Restore{
		Id: id, Tenant: "acme", RecoveryPointId: rp, Vcpus: vcpus, MemoryMib: mem, RequestId: id,
		State: restorev1.RestoreState_RESTORE_STATE_PENDING, Mode: restorev1.Mode_MODE_VIRTUALIZE,
	}})
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(w *world)
		wantPlaced map[string]string // restore → host
		wantReason map[string]string // restore → substring of its pending reason
	}{
		{
			name:       "no host holds the recovery point",
			setup:      func(w *world) { w.host("h1", 4, 4096, "rp-other"); w.restore("r1", "rp1", 1, 256) },
			wantReason: map[string]string{"r1": "no host holds recovery point rp1"},
		},
		{
			name:       "placed on the only host that holds it",
			setup:      func(w *world) { w.host("h1", 4, 4096); w.host("h2", 4, 4096, "rp1"); w.restore("r1", "rp1", 1, 256) },
			wantPlaced: map[string]string{"r1": "h2"},
		},
		{
			name: "prefers the host with most free memory",
			setup: func(w *world) {
				w.host("h1", 4, 1024, "rp1")
				w.host("h2", 4, 8192, "rp1")
				w.restore("r1", "rp1", 1, 256)
			},
			wantPlaced: map[string]string{"r1": "h2"},
		},
		{
			name: "capacity is accounted within one pass",
			setup: func(w *world) {
				w.host("h1", 2, 1024, "rp1")
				w.restore("r1", "rp1", 1, 512)
				w.restore("r2", "rp1", 1, 512)
				w.restore("r3", "rp1", 1, 512)
			},
			wantPlaced: map[string]string{"r1": "h1", "r2": "h1"},
			wantReason: map[string]string{"r3": "has 1 vCPUs and 512 MiB"},
		},
		{
			name: "drained and down hosts are named",
			setup: func(w *world) {
				w.host("h1", 4, 4096, "rp1")
				w.host("h2", 4, 4096, "rp1")
				w.apply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN, &raftv1.SetHostDrain{Id: "h1", Drained: true})
				w.apply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{Id: "h2", State: restorev1.HostState_HOST_STATE_DOWN})
				w.restore("r1", "rp1", 1, 256)
			},
			wantReason: map[string]string{"r1": "h1 (drained), h2 (down)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.setup(w)
			cmd := Plan(w.st.Read(nil))
			placed := map[string]string{}
			for _, p := range cmd.Placements {
				placed[p.RestoreId] = p.HostId
			}
			if len(placed) != len(tt.wantPlaced) {
				t.Fatalf("placed %v, want %v", placed, tt.wantPlaced)
			}
			for r, h := range tt.wantPlaced {
				if placed[r] != h {
					t.Fatalf("placed %v, want %v", placed, tt.wantPlaced)
				}
			}
			reasons := map[string]string{}
			for _, p := range cmd.Pending {
				reasons[p.RestoreId] = p.Reason
			}
			for r, want := range tt.wantReason {
				if !strings.Contains(reasons[r], want) {
					t.Fatalf("reason for %s = %q, want it to contain %q", r, reasons[r], want)
				}
			}
			// Applying the plan and planning again writes nothing: an idle cluster is quiet.
			w.apply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, cmd)
			if again := Plan(w.st.Read(nil)); len(again.Placements)+len(again.Pending) != 0 {
				t.Fatalf("second pass is not empty: %v", again)
			}
		})
	}
}

// The restores of one lab land on one host, even placed in one pass.
func TestALabsRestoresShareOneHost(t *testing.T) {
	w := newWorld(t)
	w.host("h1", 8, 8192, "rp-db", "rp-web")
	w.host("h2", 8, 8192, "rp-db", "rp-web")
	for _, id := range []string{"db", "web"} {
		w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: &restorev1.Restore{
			Id: id, Tenant: "acme", RecoveryPointId: "rp-" + id, Vcpus: 1, MemoryMib: 3000, RequestId: id, Mode: restorev1.Mode_MODE_VIRTUALIZE,
			State: restorev1.RestoreState_RESTORE_STATE_PENDING, Network: &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_ISOLATED, Lab: "erp"},
		}})
	}
	cmd := Plan(w.st.Read(nil))
	if len(cmd.Placements) != 2 || cmd.Placements[0].HostId != cmd.Placements[1].HostId {
		t.Fatalf("placements %v: want both restores of lab erp on one host", cmd.Placements)
	}
	w.apply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, cmd)
	// A third restore of the lab follows, though the other host has more room.
	w.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: &restorev1.Restore{
		Id: "app", Tenant: "acme", RecoveryPointId: "rp-web", Vcpus: 1, MemoryMib: 256, RequestId: "app", Mode: restorev1.Mode_MODE_VIRTUALIZE,
		State: restorev1.RestoreState_RESTORE_STATE_PENDING, Network: &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_ISOLATED, Lab: "erp"},
	}})
	if cmd2 := Plan(w.st.Read(nil)); len(cmd2.Placements) != 1 || cmd2.Placements[0].HostId != cmd.Placements[0].HostId {
		t.Fatalf("the lab's third restore: %v, want host %s", cmd2.Placements, cmd.Placements[0].HostId)
	}
}
