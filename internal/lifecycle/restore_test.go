package lifecycle

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func short(s State) string {
	return strings.TrimPrefix(s.String(), "RESTORE_STATE_")
}

// every restore state, with the "no state yet" of a new restore.
func everyState() []State { return append([]State{none}, States()...) }

// The agent's reports, from every state: M moves, T moves and tears down,
// K keeps the state, k keeps it and records the teardown, - is refused.
// Columns: PREPARING BOOTING RUNNING FAILED DESTROYED PAUSED.
var wantAgent = map[State]string{
	none:      "------",
	Pending:   "------",
	Scheduled: "MMMTTM",
	Preparing: "MMMTTM",
	Booting:   "MMMTTM",
	Running:   "MMMTTM",
	Stopping:  "KKKTTK",
	Destroyed: "KKKkkK",
	Failed:    "KKKkkK",
	Expired:   "KKKkkK",
	Lost:      "KKKkkK",
	Promoting: "MMMTTM",
	Promoted:  "------",
	Paused:    "MMMTTM",
}

func code(t Transition[State]) byte {
	switch {
	case t.Keep && t.TornDown:
		return 'k'
	case t.Keep:
		return 'K'
	case t.TornDown:
		return 'T'
	}
	return 'M'
}

func TestAgentReportsFromEveryStateAreDecidedByTheTable(t *testing.T) {
	for _, from := range everyState() {
		want, ok := wantAgent[from]
		if !ok {
			t.Fatalf("no expectation for %s", short(from))
		}
		var got strings.Builder
		for _, to := range agentReports {
			if tr, ok := AgentReport(from, to); ok {
				got.WriteByte(code(tr))
			} else {
				got.WriteByte('-')
			}
		}
		if got.String() != want {
			t.Errorf("agent reports from %s: got %s, want %s", short(from), got.String(), want)
		}
	}
}

// Every other transition, as "FROM>TO by" (T: tears down).
var wantOthers = map[string]bool{
	"UNSPECIFIED>PENDING api":   true,
	"UNSPECIFIED>SCHEDULED api": true,
	"UNSPECIFIED>PENDING sch":   true,
	"UNSPECIFIED>SCHEDULED sch": true,
	"PENDING>SCHEDULED sch":     true,
	"PENDING>DESTROYED api T":   true,
	"PENDING>EXPIRED lease T":   true,
	"STOPPING>EXPIRED lease":    true,
	"RUNNING>PROMOTING api":     true,
	"PROMOTING>RUNNING api":     true,
}

func init() {
	for _, s := range []string{"SCHEDULED", "PREPARING", "BOOTING", "RUNNING", "PROMOTING", "PAUSED"} {
		wantOthers[s+">STOPPING api"] = true
		wantOthers[s+">EXPIRED lease"] = true
		wantOthers[s+">LOST sch"] = true
		wantOthers[s+">PENDING sch"] = true
	}
}

func TestEveryPairOfStatesHasExactlyTheTransitionsOfTheDesign(t *testing.T) {
	causes := map[Cause]string{ByAPI: "api", ByScheduler: "sch", ByLease: "lease"}
	seen := map[string]bool{}
	for _, from := range everyState() {
		for _, to := range States() {
			for c, name := range causes {
				tr, ok := Restores.Lookup(from, to, c)
				if !ok {
					continue
				}
				key := short(from) + ">" + short(to) + " " + name
				if tr.TornDown {
					key += " T"
				}
				if tr.Keep {
					key += " keep"
				}
				seen[key] = true
				if !wantOthers[key] {
					t.Errorf("unexpected transition %s", key)
				}
			}
		}
	}
	for k := range wantOthers {
		if !seen[k] {
			t.Errorf("missing transition %s", k)
		}
	}
}

func TestStatePropertiesAgreeWithTheTable(t *testing.T) {
	tests := []struct {
		state                         State
		terminal, active, bootSettled bool
	}{
		{Pending, false, false, true},
		{Scheduled, false, true, false},
		{Preparing, false, true, false},
		{Booting, false, true, false},
		{Running, false, true, true},
		{Stopping, false, false, true},
		{Destroyed, true, false, true},
		{Failed, true, false, true},
		{Expired, true, false, true},
		{Lost, true, false, true},
		{Promoting, false, true, true},
		{Promoted, true, false, true},
		{Paused, false, true, true},
	}
	if len(tests) != len(States()) {
		t.Fatalf("%d states tested, %d known", len(tests), len(States()))
	}
	for _, tt := range tests {
		t.Run(short(tt.state), func(t *testing.T) {
			if got := Terminal(tt.state); got != tt.terminal {
				t.Errorf("Terminal = %v, want %v", got, tt.terminal)
			}
			if got := Active(tt.state); got != tt.active {
				t.Errorf("Active = %v, want %v", got, tt.active)
			}
			if got := BootSettled(tt.state); got != tt.bootSettled {
				t.Errorf("BootSettled = %v, want %v", got, tt.bootSettled)
			}
			// An active restore can always be deleted and expire.
			if tt.active {
				if _, ok := Deletion(tt.state); !ok {
					t.Error("an active restore cannot be deleted")
				}
			}
			if _, ok := Expiry(tt.state); ok == tt.terminal {
				t.Errorf("Expiry ok = %v for terminal = %v", ok, tt.terminal)
			}
		})
	}
	if Terminal(none) {
		t.Error("the zero state is not a restore state, so not terminal")
	}
}

func TestTeardownAndCapacityFollowHostAndDestroyTime(t *testing.T) {
	gone := timestamppb.Now()
	tests := []struct {
		name            string
		r               *restorev1.Restore
		teardown, holds bool
		desired         restorev1.DesiredState
	}{
		{"pending", &restorev1.Restore{State: Pending}, false, false, 0},
		{"running", &restorev1.Restore{State: Running, HostId: "h"}, false, true, restorev1.DesiredState_DESIRED_STATE_RUNNING},
		{"stopping", &restorev1.Restore{State: Stopping, HostId: "h"}, true, true, restorev1.DesiredState_DESIRED_STATE_DESTROYED},
		{"expired on a host", &restorev1.Restore{State: Expired, HostId: "h"}, true, true, restorev1.DesiredState_DESIRED_STATE_DESTROYED},
		{"expired, torn down", &restorev1.Restore{State: Expired, HostId: "h", DestroyTime: gone}, false, false, 0},
		{"expired, never placed", &restorev1.Restore{State: Expired}, false, false, 0},
		{"lost", &restorev1.Restore{State: Lost, HostId: "h"}, true, true, restorev1.DesiredState_DESIRED_STATE_DESTROYED},
		{"destroyed", &restorev1.Restore{State: Destroyed, HostId: "h", DestroyTime: gone}, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsTeardown(tt.r); got != tt.teardown {
				t.Errorf("NeedsTeardown = %v, want %v", got, tt.teardown)
			}
			if got := HoldsCapacity(tt.r); got != tt.holds {
				t.Errorf("HoldsCapacity = %v, want %v", got, tt.holds)
			}
			d, ok := Desired(tt.r)
			if d != tt.desired || ok != (tt.desired != 0) {
				t.Errorf("Desired = %v, %v; want %v", d, ok, tt.desired)
			}
		})
	}
}

func TestHostDownPlacesVerifyRunsAgainAndLosesVMs(t *testing.T) {
	for _, mode := range []restorev1.Mode{restorev1.Mode_MODE_VIRTUALIZE, restorev1.Mode_MODE_VERIFY} {
		for _, s := range States() {
			tr, ok := HostDown(&restorev1.Restore{State: s, Mode: mode})
			if ok != Active(s) {
				t.Errorf("%s %s: host down applies = %v, want %v", mode, short(s), ok, Active(s))
			}
			if !ok {
				continue
			}
			want := Lost
			if mode == restorev1.Mode_MODE_VERIFY {
				want = Pending
			}
			if tr.After() != want {
				t.Errorf("%s %s: after host down %s, want %s", mode, short(s), short(tr.After()), short(want))
			}
		}
	}
}

func TestAgentMayReportOnlyItsFiveStatesAndThePromotion(t *testing.T) {
	for _, s := range everyState() {
		want := s == Promoted || s == Promoting // only from PROMOTING
		for _, r := range agentReports {
			want = want || r == s
		}
		if got := AgentMayReport(s); got != want {
			t.Errorf("AgentMayReport(%s) = %v, want %v", short(s), got, want)
		}
	}
}
