package lifecycle

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Agent reports on a snapshot from every state: M moves, T moves and ends
// it, K is taken and changes nothing, - is refused. Columns: PREPARING
// READY RELEASED FAILED.
var wantSnapshotReports = map[SnapshotState]string{
	snapNone:      "----",
	SnapRequested: "MMTT",
	SnapPreparing: "KMTT",
	SnapReady:     "KKTT",
	SnapReleased:  "KKKK",
	SnapFailed:    "KKKK",
}

func TestSnapshotReportsFromEveryStateAreDecidedByTheTable(t *testing.T) {
	for _, from := range append([]SnapshotState{snapNone}, SnapshotStates()...) {
		var got strings.Builder
		for _, to := range []SnapshotState{SnapPreparing, SnapReady, SnapReleased, SnapFailed} {
			tr, ok := SnapshotReport(from, to)
			switch {
			case !ok:
				got.WriteByte('-')
			case tr.Keep:
				got.WriteByte('K')
			case tr.TornDown:
				got.WriteByte('T')
			default:
				got.WriteByte('M')
			}
		}
		if want := wantSnapshotReports[from]; got.String() != want {
			t.Errorf("reports from %s: got %s, want %s", from, got.String(), want)
		}
		if _, ok := SnapshotReport(from, SnapRequested); ok {
			t.Errorf("an agent may not report REQUESTED (from %s)", from)
		}
	}
}

func TestSnapshotReleaseIsAskedOnceAndNeverAfterTheEnd(t *testing.T) {
	tests := []struct {
		s    *restorev1.Snapshot
		want bool
	}{
		{&restorev1.Snapshot{State: SnapRequested}, true},
		{&restorev1.Snapshot{State: SnapPreparing}, true},
		{&restorev1.Snapshot{State: SnapReady}, true},
		{&restorev1.Snapshot{State: SnapReady, ReleaseRequested: true}, false},
		{&restorev1.Snapshot{State: SnapReleased}, false},
		{&restorev1.Snapshot{State: SnapFailed}, false},
	}
	for _, tt := range tests {
		if got := MayRelease(tt.s); got != tt.want {
			t.Errorf("MayRelease(%s, requested %v) = %v, want %v", tt.s.State, tt.s.ReleaseRequested, got, tt.want)
		}
	}
	for _, s := range SnapshotStates() {
		want := s == SnapReleased || s == SnapFailed
		if got := SnapshotTerminal(s); got != want {
			t.Errorf("SnapshotTerminal(%s) = %v, want %v", s, got, want)
		}
	}
}
