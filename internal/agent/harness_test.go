package agent

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor/hypervisortest"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Restore ids (UUIDs, as the agent requires).
const (
	r1 = "01a21630-0000-7000-8000-000000000001"
	r2 = "01a21630-0000-7000-8000-000000000002"
	r8 = "01a21630-0000-7000-8000-000000000008"
	r9 = "01a21630-0000-7000-8000-000000000009"
)

// fakeReporter records what the agent tells the control plane.
type fakeReporter struct {
	mu        sync.Mutex
	restores  []*restorev1.ReportRestoreStatusRequest
	snapshots []*restorev1.Snapshot
}

func (f *fakeReporter) reportRestore(_ context.Context, req *restorev1.ReportRestoreStatusRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restores = append(f.restores, req)
	return nil
}

func (f *fakeReporter) reportSnapshot(_ context.Context, req *restorev1.ReportSnapshotStatusRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snapshots = append(f.snapshots, req.Snapshot)
	return nil
}

// states lists the states reported for a restore, in order.
func (f *fakeReporter) states(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.restores {
		if r.RestoreId == id {
			out = append(out, shortState(r.State))
		}
	}
	return out
}

func (f *fakeReporter) last(id string) *restorev1.ReportRestoreStatusRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.restores) - 1; i >= 0; i-- {
		if f.restores[i].RestoreId == id {
			return f.restores[i]
		}
	}
	return nil
}

func shortState(s restorev1.RestoreState) string {
	return s.String()[len("RESTORE_STATE_"):]
}

// stand is a restores part on a fake hypervisor, with a catalog holding
// recovery point rp1 of tenant acme.
type stand struct {
	t   *testing.T
	hv  *hypervisortest.Fake
	rep *fakeReporter
	p   *restores
}

func newStand(t *testing.T) *stand {
	t.Helper()
	hv := hypervisortest.New()
	rep := &fakeReporter{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog{}
	cat.replace(storage.NewIndex([]storage.RecoveryPoint{{
		ID: "rp1", Tenant: "acme", Asset: "web", Valid: true,
		Manifest: &storage.Manifest{ID: "rp1", Tenant: "acme", Asset: "web", Firmware: kinds.BIOS, OS: kinds.Linux},
		Disks: []storage.ResolvedDisk{{Disk: storage.Disk{Name: "disk0", Format: kinds.Raw},
			Path: "/repo/acme/web/rp1/disk0.raw", Chain: []storage.Layer{{Path: "/repo/acme/web/rp1/disk0.raw", Format: kinds.Raw}}}},
	}}))
	caps := hv.Capabilities()
	ev := &evidence{root: t.TempDir(), retention: time.Hour, hostID: "h1", obs: hv, log: log}
	p := &restores{
		hostID: "h1", hv: hv, caps: caps, catalog: cat, rep: rep, ev: ev, log: log, work: newClaims(),
		limits: timeouts{list: 100 * time.Millisecond, teardown: time.Second, prepare: time.Second, boot: time.Second},
		boot: &bootWatcher{obs: hv, caps: caps, timeout: 2 * time.Second, settle: 10 * time.Millisecond,
			marker: regexp.MustCompile(`login:`), signals: []string{signalGuestAgent}, log: log},
		verify: &verifications{obs: hv, caps: caps, ev: ev, settle: 10 * time.Millisecond, bootTimeout: 2 * time.Second, log: log},
	}
	return &stand{t: t, hv: hv, rep: rep, p: p}
}

// pass runs one reconcile pass and waits for the work it started.
func (s *stand) pass(as ...*restorev1.Assignment) {
	s.t.Helper()
	s.p.reconcile(context.Background(), as)
	s.p.work.wait()
}

func restoreIn(id string, state restorev1.RestoreState, mode restorev1.Mode) *restorev1.Restore {
	return &restorev1.Restore{Id: id, Tenant: "acme", RecoveryPointId: "rp1", Mode: mode, Vcpus: 1, MemoryMib: 256,
		State: state, HostId: "h1", ExpireTime: timestamppb.New(time.Now().Add(time.Hour)), UpdateTime: timestamppb.Now()}
}

func running(r *restorev1.Restore) *restorev1.Assignment {
	return &restorev1.Assignment{Restore: r, Desired: restorev1.DesiredState_DESIRED_STATE_RUNNING}
}

func destroyed(r *restorev1.Restore) *restorev1.Assignment {
	return &restorev1.Assignment{Restore: r, Desired: restorev1.DesiredState_DESIRED_STATE_DESTROYED}
}

func (s *stand) wantCalls(want ...string) {
	s.t.Helper()
	got := s.hv.Calls()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		s.t.Fatalf("hypervisor calls %q, want %q", got, want)
	}
}

func (s *stand) wantStates(id string, want ...string) {
	s.t.Helper()
	if got := s.rep.states(id); !slices.Equal(got, want) {
		s.t.Fatalf("reported %s: %q, want %q", id, got, want)
	}
}
