package lifecycle

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// SnapshotState is a snapshot's state.
type SnapshotState = restorev1.SnapshotState

// The snapshot states, short.
const (
	snapNone      = restorev1.SnapshotState_SNAPSHOT_STATE_UNSPECIFIED
	SnapRequested = restorev1.SnapshotState_SNAPSHOT_STATE_REQUESTED
	SnapPreparing = restorev1.SnapshotState_SNAPSHOT_STATE_PREPARING
	SnapReady     = restorev1.SnapshotState_SNAPSHOT_STATE_READY
	SnapReleased  = restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED
	SnapFailed    = restorev1.SnapshotState_SNAPSHOT_STATE_FAILED
)

// snapshotStates lists the snapshot states in their order: a report never
// moves a snapshot to an earlier one.
var snapshotStates = []SnapshotState{SnapRequested, SnapPreparing, SnapReady, SnapReleased, SnapFailed}

func snapshotRows() []Transition[SnapshotState] {
	rows := []Transition[SnapshotState]{{From: snapNone, To: SnapRequested, By: ByAPI}}
	rank := map[SnapshotState]int{SnapRequested: 1, SnapPreparing: 2, SnapReady: 3, SnapReleased: 4, SnapFailed: 4}
	for _, from := range snapshotStates {
		done := from == SnapReleased || from == SnapFailed
		for _, to := range snapshotStates[1:] {
			// Forward reports move it; a late or repeated one is taken
			// and changes nothing; an ended snapshot stays ended.
			keep := done || rank[to] <= rank[from]
			rows = append(rows, Transition[SnapshotState]{From: from, To: to, By: ByAgent, Keep: keep,
				TornDown: !keep && (to == SnapReleased || to == SnapFailed)})
		}
		if !done {
			// A release asked by a caller's delete, a lease or a restarted
			// agent is a flag on the snapshot; the host's report ends it.
			rows = append(rows, Transition[SnapshotState]{From: from, To: SnapReleased, By: ByAPI | ByLease, Keep: true})
		}
	}
	return rows
}

// Snapshots is the snapshot lifecycle's table.
var Snapshots = newTable(snapshotRows())

// SnapshotDone says whether a snapshot reached RELEASED or FAILED.
func SnapshotDone(s *restorev1.Snapshot) bool { return SnapshotTerminal(s.State) }

// SnapshotTerminal says whether no row moves a snapshot out of state s.
func SnapshotTerminal(s SnapshotState) bool { return s != snapNone && !Snapshots.Leaves(s) }

// SnapshotReport decides an agent's report of state to for a snapshot in
// state from: ok is false for a state an agent never reports.
func SnapshotReport(from, to SnapshotState) (Transition[SnapshotState], bool) {
	return Snapshots.Lookup(from, to, ByAgent)
}

// MayRelease says whether a release (asked by a caller or a lease) is to
// be recorded on snapshot s: not when it ended or a release is under way
// already.
func MayRelease(s *restorev1.Snapshot) bool {
	_, ok := Snapshots.Lookup(s.State, SnapReleased, ByAPI|ByLease)
	return ok && !s.ReleaseRequested
}

// Readable says whether a snapshot's exports may be read: READY, with no
// release asked for.
func Readable(s *restorev1.Snapshot) bool { return s.State == SnapReady && !s.ReleaseRequested }

// SnapshotStates lists every snapshot state in order.
func SnapshotStates() []SnapshotState { return append([]SnapshotState(nil), snapshotStates...) }
