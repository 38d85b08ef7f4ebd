package fsm_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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
// compares it with what the FSM keeps on the host record, and the restore
// counts by state with what the store keeps.
func (h *harness) checkAllocation() {
	h.t.Helper()
	r := h.st.Read(nil)
	counts := map[restorev1.RestoreState]int{}
	for _, x := range r.Restores("") {
		counts[x.State]++
	}
	for s, n := range r.RestoreCounts() {
		if n != counts[s] {
			h.t.Fatalf("%s: the store counts %d restores, there are %d", s, n, counts[s])
		}
		delete(counts, s)
	}
	if len(counts) > 0 {
		h.t.Fatalf("restores the store does not count: %v", counts)
	}
	for _, host := range r.Hosts() {
		want := &restorev1.Capacity{}
		for _, x := range r.RestoresOnHost(host.Id) {
			if lifecycle.HoldsCapacity(x) {
				want.Vcpus += x.Vcpus
				want.MemoryMib += x.MemoryMib
				want.DiskMib += x.OverlayLimitMib
			}
		}
		got := r.Allocated(host.Id)
		if got.Vcpus != want.Vcpus || got.MemoryMib != want.MemoryMib || got.DiskMib != want.DiskMib {
			h.t.Fatalf("host %s allocation %v, restores on it hold %v", host.Id, got, want)
		}
	}
	// Each tenant's usage, kept in step, is what its restores and
	// snapshots hold.
	usage := map[string]*restorev1.TenantUsage{}
	of := func(tenant string) *restorev1.TenantUsage {
		if usage[tenant] == nil {
			usage[tenant] = &restorev1.TenantUsage{}
		}
		return usage[tenant]
	}
	for _, x := range r.Restores("") {
		if lifecycle.CountsTowardQuota(x) {
			lifecycle.AddToUsage(of(x.Tenant), x)
		}
	}
	for _, x := range r.Snapshots("") {
		if lifecycle.SnapshotCountsTowardQuota(x) {
			of(x.Tenant).Snapshots++
		}
	}
	for _, t := range append(r.Tenants(), &restorev1.Tenant{Id: ""}) {
		if got, want := r.TenantUsage(t.Id), of(t.Id); !proto.Equal(got, want) {
			h.t.Fatalf("tenant %q: usage kept %v, its restores and snapshots hold %v", t.Id, got, want)
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
	// h1 runs the domains web and db (guests are registered from them).
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY, &raftv1.ReportInventory{HostId: "h1", Time: at(1), Domains: []*restorev1.HostDomain{
		{Uuid: uuidWeb, Name: "web", Running: true}, {Uuid: uuidDB, Name: "db"},
	}})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: newRestore("r1", "req-1", restorev1.Mode_MODE_VIRTUALIZE), BodySha256: []byte("body-1")})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, &raftv1.PlaceRestores{Placements: []*raftv1.Placement{{RestoreId: "r1", HostId: "h1"}}, Time: at(3)})
}

// The UUIDs of h1's domains.
const (
	uuidWeb = "4c4c4544-0042-3510-8053-b4c04f4e3032"
	uuidDB  = "4c4c4544-0042-3510-8053-b4c04f4e3033"
)

func newRestore(id, req string, mode restorev1.Mode) *restorev1.Restore {
	return &restorev1.Restore{
		Id: id, Tenant: "acme", RecoveryPointId: "rp1", Asset: "web", Mode: mode, Vcpus: 1, MemoryMib: 256,
		TtlSeconds: 60, RequestId: req, State: restorev1.RestoreState_RESTORE_STATE_PENDING,
		CreateTime: at(2), ExpireTime: at(62),
	}
}
