package lifecycle

import (
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// State is a restore's state.
type State = restorev1.RestoreState

// The restore states, short.
const (
	none      = restorev1.RestoreState_RESTORE_STATE_UNSPECIFIED
	Pending   = restorev1.RestoreState_RESTORE_STATE_PENDING
	Scheduled = restorev1.RestoreState_RESTORE_STATE_SCHEDULED
	Preparing = restorev1.RestoreState_RESTORE_STATE_PREPARING
	Booting   = restorev1.RestoreState_RESTORE_STATE_BOOTING
	Running   = restorev1.RestoreState_RESTORE_STATE_RUNNING
	Stopping  = restorev1.RestoreState_RESTORE_STATE_STOPPING
	Destroyed = restorev1.RestoreState_RESTORE_STATE_DESTROYED
	Failed    = restorev1.RestoreState_RESTORE_STATE_FAILED
	Expired   = restorev1.RestoreState_RESTORE_STATE_EXPIRED
	Lost      = restorev1.RestoreState_RESTORE_STATE_LOST
	Promoting = restorev1.RestoreState_RESTORE_STATE_PROMOTING
	Promoted  = restorev1.RestoreState_RESTORE_STATE_PROMOTED
	Paused    = restorev1.RestoreState_RESTORE_STATE_PAUSED
)

// stateInfo is what a state means for the restore's host.
type stateInfo struct {
	// active: the VM is (to be) running on its host.
	active bool
	// bootOpen: the agent has not reported the boot's outcome yet.
	bootOpen bool
	// teardown: the host must still destroy the VM and its files, unless
	// it reported them gone (destroy_time).
	teardown bool
	// screen: the VM was started, it has a screen and a console.
	screen bool
}

// states lists every state a restore can be in; a state missing here is
// not a restore state.
var states = map[State]stateInfo{
	Pending:   {},
	Scheduled: {active: true, bootOpen: true},
	Preparing: {active: true, bootOpen: true},
	Booting:   {active: true, bootOpen: true, screen: true},
	Running:   {active: true, screen: true},
	Stopping:  {teardown: true},
	Destroyed: {},
	Failed:    {teardown: true},
	Expired:   {teardown: true},
	Lost:      {teardown: true},
	// Copying its disks to production storage while it runs.
	Promoting: {active: true, screen: true},
	// Handed over: nothing of Restored's any more.
	Promoted: {},
	// Its VM paused by its host (overlay limit, full work dir): it holds
	// its capacity and its screen until deleted or expired.
	Paused: {active: true, screen: true},
}

// onHost are the states of a restore placed on a host and still wanted there.
var onHost = []State{Scheduled, Preparing, Booting, Running, Promoting, Paused}

// agentReports are the states an agent may report.
var agentReports = []State{Preparing, Booting, Running, Failed, Destroyed, Paused}

// restoreRows builds the restore table. Read it as: From may become To
// when By causes it.
func restoreRows() []Transition[State] {
	rows := []Transition[State]{
		// A new restore: created waiting for a host, or already placed on
		// one (the API and a policy's run choose a host before raft; the
		// FSM keeps the choice only when it still fits).
		{From: none, To: Pending, By: ByAPI | ByScheduler},
		{From: none, To: Scheduled, By: ByAPI | ByScheduler},
		{From: Pending, To: Scheduled, By: ByScheduler},
		// Deleted before it was placed: nothing to tear down.
		{From: Pending, To: Destroyed, By: ByAPI, TornDown: true},
		{From: Pending, To: Expired, By: ByLease, TornDown: true},
		{From: Stopping, To: Expired, By: ByLease},
	}
	for _, s := range onHost {
		rows = append(rows,
			Transition[State]{From: s, To: Stopping, By: ByAPI},
			Transition[State]{From: s, To: Expired, By: ByLease},
			// Its host went down: a VIRTUALIZE VM is lost, a VERIFY run is
			// placed again.
			Transition[State]{From: s, To: Lost, By: ByScheduler},
			Transition[State]{From: s, To: Pending, By: ByScheduler},
		)
		// The agent's progress. The VM may vanish under a RUNNING restore
		// unseen (while the agent was away): the agent boots it again, so
		// every progress report is taken from every state on the host.
		for _, to := range agentReports {
			rows = append(rows, Transition[State]{From: s, To: to, By: ByAgent, TornDown: to == Failed || to == Destroyed})
		}
	}
	// Promotion: asked for and cancelled by a caller, ended by the agent
	// once the domain runs from its copies and is handed over.
	rows = append(rows,
		Transition[State]{From: Running, To: Promoting, By: ByAPI},
		Transition[State]{From: Promoting, To: Running, By: ByAPI},
		Transition[State]{From: Promoting, To: Promoted, By: ByAgent},
		// The copy's progress (a RUNNING report instead: the copy failed
		// and the restore goes on as before).
		Transition[State]{From: Promoting, To: Promoting, By: ByAgent},
	)
	// Teardown asked for: progress no longer changes the state; the
	// agent's teardown ends it.
	rows = append(rows,
		Transition[State]{From: Stopping, To: Preparing, By: ByAgent, Keep: true},
		Transition[State]{From: Stopping, To: Booting, By: ByAgent, Keep: true},
		Transition[State]{From: Stopping, To: Running, By: ByAgent, Keep: true},
		Transition[State]{From: Stopping, To: Paused, By: ByAgent, Keep: true},
		Transition[State]{From: Stopping, To: Destroyed, By: ByAgent, TornDown: true},
		Transition[State]{From: Stopping, To: Failed, By: ByAgent, TornDown: true},
	)
	// Terminal states keep saying why the restore ended; the agent's
	// reports only add their facts and, for a teardown, that the VM is gone.
	for _, s := range []State{Failed, Expired, Lost, Destroyed} {
		for _, to := range agentReports {
			rows = append(rows, Transition[State]{From: s, To: to, By: ByAgent, Keep: true, TornDown: to == Failed || to == Destroyed})
		}
	}
	return rows
}

// Restores is the restore lifecycle's table.
var Restores = newTable(restoreRows())

// Terminal says whether a state is final: no row moves a restore out of it.
func Terminal(s State) bool { _, known := states[s]; return known && !Restores.Leaves(s) }

// Active says whether a restore in state s is (to be) running on its host.
func Active(s State) bool { return states[s].active }

// BootSettled says whether the control plane already has the boot's
// outcome of a restore in state s (the agent need not watch it again).
func BootSettled(s State) bool { return !states[s].bootOpen }

// HasScreen says whether a restore in state s has a screen to show (and
// a console to open): its VM was started and still runs.
func HasScreen(s State) bool { return states[s].screen }

// NeedsTeardown says whether the host's agent still has to destroy the
// restore's VM and files.
func NeedsTeardown(r *restorev1.Restore) bool {
	return r.HostId != "" && r.DestroyTime == nil && states[r.State].teardown
}

// HoldsCapacity says whether a restore takes capacity on its host:
// everything active or still to be torn down.
func HoldsCapacity(r *restorev1.Restore) bool {
	return r.HostId != "" && (Active(r.State) || NeedsTeardown(r))
}

// Desired is what the host's agent must make true for a restore, and
// false when the restore is nothing to its host any more.
func Desired(r *restorev1.Restore) (restorev1.DesiredState, bool) {
	switch {
	case r.HostId == "":
		return restorev1.DesiredState_DESIRED_STATE_UNSPECIFIED, false
	case Active(r.State):
		return restorev1.DesiredState_DESIRED_STATE_RUNNING, true
	case NeedsTeardown(r):
		return restorev1.DesiredState_DESIRED_STATE_DESTROYED, true
	}
	return restorev1.DesiredState_DESIRED_STATE_UNSPECIFIED, false
}

// AgentMayReport says whether an agent may ever report state s.
func AgentMayReport(s State) bool { return Restores.Reachable(s, ByAgent) }

// AgentReport decides an agent's report of state to for a restore in state
// from: ok is false when the table has no row for it.
func AgentReport(from, to State) (Transition[State], bool) {
	return Restores.Lookup(from, to, ByAgent)
}

// Deletion is what a caller's delete does to a restore in state from; ok
// is false when there is nothing to do (it is stopping or ended already).
func Deletion(from State) (Transition[State], bool) {
	for _, to := range []State{Destroyed, Stopping} {
		if t, ok := Restores.Lookup(from, to, ByAPI); ok {
			return t, true
		}
	}
	return Transition[State]{}, false
}

// Promotion is what a caller's promote does to a restore in state from;
// ok is false unless it runs.
func Promotion(from State) (Transition[State], bool) { return Restores.Lookup(from, Promoting, ByAPI) }

// PromotionRefused says why restore x cannot be promoted now (nil: it
// can): the API asks before raft, the FSM again.
func PromotionRefused(x *restorev1.Restore) error {
	if x.Mode != restorev1.Mode_MODE_VIRTUALIZE {
		return status.Errorf(codes.FailedPrecondition, "restore %s is a %s restore: only a VIRTUALIZE restore can be promoted", x.Id, ModeName(x.Mode))
	}
	if _, ok := Promotion(x.State); !ok {
		return status.Errorf(codes.FailedPrecondition, "restore %s is %s: only a RUNNING restore can be promoted", x.Id, x.State)
	}
	return nil
}

// PromotionCancelRefused says why restore x's promotion cannot be
// cancelled (nil: it can).
func PromotionCancelRefused(x *restorev1.Restore) error {
	if _, ok := PromotionCancel(x.State); !ok {
		return status.Errorf(codes.FailedPrecondition, "restore %s is %s: only a PROMOTING restore's promotion can be cancelled", x.Id, x.State)
	}
	return nil
}

// PromotionCancel is what a caller's cancel does to a promotion; ok is
// false unless the restore is PROMOTING.
func PromotionCancel(from State) (Transition[State], bool) {
	if from != Promoting {
		return Transition[State]{}, false
	}
	return Restores.Lookup(from, Running, ByAPI)
}

// Expiry is what a lease that ran out does to a restore in state from; ok
// is false when it has ended already.
func Expiry(from State) (Transition[State], bool) { return Restores.Lookup(from, Expired, ByLease) }

// Expirable lists the states whose restores a lease can end.
func Expirable() []State {
	var out []State
	for _, s := range States() {
		if _, ok := Expiry(s); ok {
			out = append(out, s)
		}
	}
	return out
}

// HostDown is what its host going down does to a restore: a VERIFY run is
// placed again, a VIRTUALIZE VM is lost. ok is false when the restore is
// not running there.
func HostDown(r *restorev1.Restore) (Transition[State], bool) {
	to := Lost
	if r.Mode == restorev1.Mode_MODE_VERIFY {
		to = Pending
	}
	return Restores.Lookup(r.State, to, ByScheduler)
}

// Placement is what the scheduler's placing a restore in state from does;
// ok is false unless it waits for a host.
func Placement(from State) (Transition[State], bool) {
	return Restores.Lookup(from, Scheduled, ByScheduler)
}

// States lists every restore state, in the enum's order.
func States() []State {
	out := make([]State, 0, len(states))
	for s := range states {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
