package agent

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor/hypervisortest"
	"github.com/restored/restored/internal/lifecycle"
)

const s1 = "01a21630-0000-7000-8000-0000000000a1"

func snapshotStand(t *testing.T) (*snapshots, *hypervisortest.Fake, *fakeReporter) {
	hv := hypervisortest.New()
	rep := &fakeReporter{}
	return newSnapshots("h1", hv, hv.Capabilities(), rep, slog.New(slog.NewTextHandler(io.Discard, nil))), hv, rep
}

func snapshotIn(state restorev1.SnapshotState, release bool) *restorev1.SnapshotAssignment {
	return &restorev1.SnapshotAssignment{Snapshot: &restorev1.Snapshot{Id: s1, State: state, Quiesce: true},
		Guest: &restorev1.Guest{Name: "web-01"}, Release: release}
}

func reportedSnapshotStates(rep *fakeReporter) []restorev1.SnapshotState {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	var out []restorev1.SnapshotState
	for _, s := range rep.snapshots {
		out = append(out, s.State)
	}
	return out
}

func TestASnapshotIsTakenOnceServedAndReleased(t *testing.T) {
	p, hv, rep := snapshotStand(t)
	ctx := context.Background()
	p.reconcile(ctx, []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapRequested, false)})
	p.work.wait()
	// The same assignment again (the READY report not yet applied): not
	// taken twice.
	p.reconcile(ctx, []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapRequested, false)})
	p.work.wait()
	if got := reportedSnapshotStates(rep); !slices.Equal(got, []restorev1.SnapshotState{lifecycle.SnapPreparing, lifecycle.SnapReady}) {
		t.Fatalf("reported %v", got)
	}
	ready := rep.snapshots[1]
	if ready.Consistency != restorev1.Consistency_CONSISTENCY_QUIESCED || ready.Disks[0].NbdUri == "" {
		t.Fatalf("READY report %v", ready)
	}
	page, err := p.extentsPage(ctx, s1, "vda", 0, 10)
	if err != nil || len(page.Extents) != 1 || page.NextPageToken != "" {
		t.Fatalf("extents %v %v", page, err)
	}
	if _, err := p.extentsPage(ctx, s1, "vdz", 0, 10); err == nil {
		t.Fatal("extents of a disk the snapshot does not have")
	}
	p.reconcile(ctx, []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapReady, true)})
	p.work.wait()
	if got := reportedSnapshotStates(rep); got[len(got)-1] != lifecycle.SnapReleased {
		t.Fatalf("reported %v", got)
	}
	if _, err := p.extentsPage(ctx, s1, "vda", 0, 10); err == nil {
		t.Fatal("a released snapshot still serves its extents")
	}
	if got := hv.Calls(); !slices.Equal(got, []string{"snapshot " + s1, "release " + s1}) {
		t.Fatalf("calls %v", got)
	}
}

func TestASnapshotAnEarlierRunTookIsCleanedAndFailed(t *testing.T) {
	p, hv, rep := snapshotStand(t)
	p.reconcile(context.Background(), []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapReady, false)})
	p.work.wait()
	if got := reportedSnapshotStates(rep); !slices.Equal(got, []restorev1.SnapshotState{lifecycle.SnapFailed}) {
		t.Fatalf("reported %v", got)
	}
	if got := hv.Calls(); !slices.Equal(got, []string{"release " + s1}) {
		t.Fatalf("calls %v", got)
	}
}
