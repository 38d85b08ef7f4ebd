package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	virtualize = restorev1.Mode_MODE_VIRTUALIZE
	verify     = restorev1.Mode_MODE_VERIFY
)

func TestReconcileBootsWhatMustRunAndReportsEachStep(t *testing.T) {
	s := newStand(t)
	s.pass(running(restoreIn(r1, lifecycle.Scheduled, virtualize)))
	s.wantCalls("prepare "+r1, "boot "+r1)
	s.wantStates(r1, "PREPARING", "BOOTING", "RUNNING")
	last := s.rep.last(r1)
	if !last.Boot.GetVerified() || last.Boot.Signals[0] != signalGuestAgent {
		t.Fatalf("boot %v", last.Boot)
	}
	vm := s.hv.VM(r1)
	if vm == nil || !vm.Running || vm.Spec.Disks[0].Chain[0].Path != "/repo/acme/web/rp1/disk0.raw" || vm.Spec.MemoryMiB != 256 {
		t.Fatalf("vm %+v", vm)
	}
}

func TestReconcileAdoptsARunningRestoreWithoutTouchingIt(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	s.pass(running(restoreIn(r1, lifecycle.Running, virtualize)))
	s.wantCalls()
	s.wantStates(r1)
}

func TestReconcileVerifiesTheBootOfAnAdoptedRestoreWhoseOutcomeWasNeverReported(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true) // the agent restarted while it booted
	s.pass(running(restoreIn(r1, lifecycle.Booting, virtualize)))
	s.wantCalls()
	s.wantStates(r1, "RUNNING")
}

func TestReconcileBootsAgainARestoreWhoseVMIsGone(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, false) // defined but not running (a crash, a libvirtd restart)
	s.pass(running(restoreIn(r1, lifecycle.Running, virtualize)))
	s.wantCalls("prepare "+r1, "boot "+r1)
	s.wantStates(r1, "PREPARING", "BOOTING", "RUNNING")
}

func TestReconcileTearsDownWhatMustGoAndReportsIt(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	s.pass(destroyed(restoreIn(r1, lifecycle.Stopping, virtualize)))
	s.wantCalls("teardown " + r1)
	s.wantStates(r1, "DESTROYED")
	if s.hv.Holds(r1) {
		t.Fatal("the VM is still there")
	}
}

func TestReconcileRemovesOrphansWithoutReportingThem(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r9, true) // nothing assigns it
	s.hv.AddFiles(r8)    // files of an interrupted attempt
	s.hv.AddVM(r1, true)
	s.pass(running(restoreIn(r1, lifecycle.Running, virtualize)))
	s.wantCalls("teardown "+r8, "teardown "+r9)
	if s.hv.Holds(r8) || s.hv.Holds(r9) || !s.hv.Holds(r1) {
		t.Fatalf("holds r8 %v r9 %v r1 %v", s.hv.Holds(r8), s.hv.Holds(r9), s.hv.Holds(r1))
	}
	s.wantStates(r8)
	s.wantStates(r9)
}

func TestAFailedTeardownIsRetriedAtTheNextPass(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	s.hv.FailTeardowns(r1, 1)
	gone := destroyed(restoreIn(r1, lifecycle.Expired, virtualize))
	s.pass(gone)
	s.wantStates(r1) // not DESTROYED: nothing was removed
	if !s.hv.Holds(r1) {
		t.Fatal("the failed teardown removed the VM")
	}
	s.pass(gone)
	s.wantStates(r1, "DESTROYED")
	s.wantCalls("teardown "+r1, "teardown "+r1)
}

func TestADriverThatTimesOutEndsThePassNotTheAgent(t *testing.T) {
	s := newStand(t)
	release := s.hv.HangOwned()
	start := time.Now()
	s.pass(running(restoreIn(r1, lifecycle.Scheduled, virtualize)))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the pass took %s with a hung driver", took)
	}
	s.wantCalls() // nothing decided on a state it could not read
	s.wantStates(r1)
	release()
	s.pass(running(restoreIn(r1, lifecycle.Scheduled, virtualize)))
	s.wantStates(r1, "PREPARING", "BOOTING", "RUNNING")
}

func TestABootThatFailsIsUnwoundAndReportedFailed(t *testing.T) {
	s := newStand(t)
	s.hv.FailBoots(errors.New("qemu: could not open disk0 (injected)"))
	s.pass(running(restoreIn(r1, lifecycle.Scheduled, virtualize)))
	s.wantStates(r1, "PREPARING", "FAILED")
	if last := s.rep.last(r1); !strings.Contains(last.StateReason, "could not open disk0") {
		t.Fatalf("reason %q", last.StateReason)
	}
	if s.hv.Holds(r1) {
		t.Fatal("a failed boot left its VM")
	}
}

func TestARestoreOfAnUnknownRecoveryPointFailsAndLeavesNothing(t *testing.T) {
	s := newStand(t)
	r := restoreIn(r1, lifecycle.Scheduled, virtualize)
	r.RecoveryPointId = "rp-gone"
	s.pass(running(r))
	s.wantStates(r1, "PREPARING", "FAILED")
	if last := s.rep.last(r1); !strings.Contains(last.StateReason, "not in this host's repository") {
		t.Fatalf("reason %q", last.StateReason)
	}
	s.wantCalls("teardown " + r1) // the unwinding, which finds nothing
}

func TestDeletingWhileBootingStopsTheBootAndTearsDown(t *testing.T) {
	s := newStand(t)
	s.hv.GuestAgentUp(false) // the boot is never verified
	s.p.boot.timeout = time.Minute
	s.p.reconcile(context.Background(), []*restorev1.Assignment{running(restoreIn(r1, lifecycle.Scheduled, virtualize))})
	deadline := time.Now().Add(5 * time.Second)
	for len(s.rep.states(r1)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.wantStates(r1, "PREPARING", "BOOTING")
	s.pass(destroyed(restoreIn(r1, lifecycle.Stopping, virtualize)))
	s.wantStates(r1, "PREPARING", "BOOTING", "DESTROYED")
	if s.hv.Holds(r1) {
		t.Fatal("the VM is still there")
	}
}

func TestAVerifyRestoreReportsItsVerdictAndTearsItselfDown(t *testing.T) {
	s := newStand(t)
	r := restoreIn(r1, lifecycle.Scheduled, verify)
	r.Verify = &restorev1.VerifyOptions{SerialMarker: "login:", AppChecks: []*restorev1.AppCheck{{Name: "hello", Path: "/bin/true"}}}
	s.pass(running(r))
	s.wantStates(r1, "PREPARING", "BOOTING", "RUNNING", "RUNNING", "DESTROYED")
	last := s.rep.last(r1)
	v := last.Verification
	if v.GetVerdict() != restorev1.Verdict_VERDICT_PASSED {
		t.Fatalf("verdict %s: %s", v.GetVerdict(), v.GetReason())
	}
	names := map[string]restorev1.CheckResult{}
	for _, c := range v.Checks {
		names[c.Name] = c.Result
	}
	if names["guest-agent"] != restorev1.CheckResult_CHECK_RESULT_PASSED || names["serial"] != restorev1.CheckResult_CHECK_RESULT_PASSED ||
		names["app:hello"] != restorev1.CheckResult_CHECK_RESULT_PASSED || names["screen"] != restorev1.CheckResult_CHECK_RESULT_SKIPPED {
		t.Fatalf("checks %v", names)
	}
	if s.hv.Holds(r1) {
		t.Fatal("a VERIFY restore was not torn down")
	}
	// The assignment from before the verdict, still on its way, does not
	// boot it again (bench-verify once found such a domain left defined).
	s.pass(running(r))
	s.wantStates(r1, "PREPARING", "BOOTING", "RUNNING", "RUNNING", "DESTROYED")
	if s.hv.Holds(r1) {
		t.Fatal("a stale assignment booted the ended VERIFY restore again")
	}
	// Placed again later (a newer assignment), it runs again.
	again := restoreIn(r1, lifecycle.Scheduled, verify)
	again.UpdateTime = timestamppb.New(time.Now().Add(time.Second))
	s.pass(running(again))
	if got := s.rep.states(r1); len(got) <= 5 {
		t.Fatalf("a newer assignment was not started: %v", got)
	}
}

// A VM seen stopping unexpectedly is failed with the reason and torn down;
// the passes after it do not boot it again. One the agent was not
// assigned (another agent's, on a shared libvirtd) is left alone.
func TestAVMSeenCrashingIsFailedAndNotBootedAgain(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	a := running(restoreIn(r1, lifecycle.Running, virtualize))
	s.pass(a)
	s.p.vmStopped(context.Background(), hypervisor.VMEvent{RestoreID: r1, Reason: "its QEMU process ended unexpectedly"})
	s.p.vmStopped(context.Background(), hypervisor.VMEvent{RestoreID: r2, Reason: "not ours"})
	last := s.awaitReport(r1)
	if last == nil || last.State != lifecycle.Failed || !strings.Contains(last.StateReason, "stopped unexpectedly: its QEMU process ended unexpectedly") {
		t.Fatalf("after the crash: %v", last)
	}
	if s.hv.Holds(r1) {
		t.Fatal("the crashed restore was not torn down")
	}
	s.pass(a) // the assignment still says RUNNING (the report is on its way)
	for _, c := range s.hv.Calls() {
		if strings.HasPrefix(c, "boot "+r1) || strings.HasPrefix(c, "prepare "+r1) {
			t.Fatalf("the crashed restore was booted again: %v", s.hv.Calls())
		}
	}
	if s.rep.last(r2) != nil {
		t.Fatalf("a restore this agent was not assigned was reported: %v", s.rep.last(r2))
	}
}

// A VERIFY run whose VM stops unexpectedly is a FAILED verification that
// says why.
func TestAVerifyRunWhoseVMCrashesIsAFailedVerification(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	s.p.crashes.assign(map[string]*restorev1.Restore{r1: restoreIn(r1, lifecycle.Booting, restorev1.Mode_MODE_VERIFY)})
	s.p.vmStopped(context.Background(), hypervisor.VMEvent{RestoreID: r1, Reason: "its QEMU process ended unexpectedly"})
	last := s.awaitReport(r1)
	if last == nil || last.State != lifecycle.Failed || last.Verification.GetVerdict() != restorev1.Verdict_VERDICT_FAILED ||
		!strings.Contains(last.Verification.GetReason(), "stopped unexpectedly during the verification") {
		t.Fatalf("after the crash: %v", last)
	}
	if s.hv.Holds(r1) {
		t.Fatal("the crashed run was not torn down")
	}
}

// A VM its hypervisor paused on a full disk is reported PAUSED with the
// reason, once, kept (not torn down), and not booted again by the passes
// that follow, before and after the control plane took the report.
func TestAVMPausedOnAFullDiskIsReportedPausedAndLeftSo(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	a := running(restoreIn(r1, lifecycle.Running, virtualize))
	s.pass(a)
	full := hypervisor.VMEvent{RestoreID: r1, Reason: "its host's work dir is full", Paused: true}
	s.p.vmPaused(context.Background(), full.RestoreID, full.Reason)
	s.p.vmPaused(context.Background(), full.RestoreID, full.Reason) // the event again
	last := s.awaitReport(r1)
	if last == nil || last.State != lifecycle.Paused || last.StateReason != "its host's work dir is full" {
		t.Fatalf("after the pause: %v", last)
	}
	s.pass(a)                                                    // the assignment still says RUNNING
	s.pass(running(restoreIn(r1, lifecycle.Paused, virtualize))) // and now PAUSED
	if !s.hv.Holds(r1) {
		t.Fatal("the paused restore was torn down")
	}
	for _, c := range s.hv.Calls() {
		if strings.HasPrefix(c, "boot "+r1) || strings.HasPrefix(c, "prepare "+r1) || strings.HasPrefix(c, "destroy "+r1) {
			t.Fatalf("the paused restore was touched: %v", s.hv.Calls())
		}
	}
}

// A VERIFY run paused on a full disk cannot reach its verdict: it is a
// FAILED verification that says why, torn down.
func TestAVerifyRunPausedOnAFullDiskFails(t *testing.T) {
	s := newStand(t)
	s.hv.AddVM(r1, true)
	s.p.crashes.assign(map[string]*restorev1.Restore{r1: restoreIn(r1, lifecycle.Booting, restorev1.Mode_MODE_VERIFY)})
	s.p.vmPaused(context.Background(), r1, "its host's work dir is full")
	last := s.awaitReport(r1)
	if last == nil || last.State != lifecycle.Failed || !strings.Contains(last.Verification.GetReason(), "its host's work dir is full") {
		t.Fatalf("after the pause: %v", last)
	}
	if s.hv.Holds(r1) {
		t.Fatal("the paused run was not torn down")
	}
}

// A stopping agent waits for work in flight and names what it left.
func TestDrainWaitsForWorkAndNamesWhatIsLeft(t *testing.T) {
	c := newClaims()
	c.goWork(context.Background(), r1, func(context.Context) { time.Sleep(20 * time.Millisecond) })
	if left := c.drain(5 * time.Second); left != nil {
		t.Fatalf("work that ended in 20 ms was left: %v", left)
	}
	release := make(chan struct{})
	defer close(release)
	c.goWork(context.Background(), r2, func(context.Context) { <-release })
	if left := c.drain(50 * time.Millisecond); !slices.Equal(left, []string{r2}) {
		t.Fatalf("left %v, want [%s]", left, r2)
	}
}

// awaitReport waits (5 s at most) for work started outside a pass to
// report on id, and returns its last report.
func (s *stand) awaitReport(id string) *restorev1.ReportRestoreStatusRequest {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.rep.last(id) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.p.work.wait()
	return s.rep.last(id)
}
