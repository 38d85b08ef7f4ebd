package fsm_test

import (
	"fmt"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

func rps(prefix string, n int) []*restorev1.RecoveryPoint {
	out := make([]*restorev1.RecoveryPoint, n)
	for i := range out {
		out[i] = &restorev1.RecoveryPoint{Id: fmt.Sprintf("%s-%d", prefix, i), Tenant: "acme", Asset: "web", Valid: true}
	}
	return out
}

func held(h *harness, host string) map[string]bool {
	out := map[string]bool{}
	for _, rp := range h.st.Read(nil).RecoveryPointsHeldBy(host) {
		out[rp.Id] = true
	}
	return out
}

// A scan sent in parts: every part adds, only the last withdraws, and it
// withdraws exactly what no part of its scan listed; a scan cut short
// withdraws nothing; a whole-set report (no scan id) still replaces.
func TestAScanInPartsWithdrawsOnlyWhatNoPartListed(t *testing.T) {
	h := newHarness(t)
	seed(h) // h1 holds rp1
	report := func(scan string, more bool, list []*restorev1.RecoveryPoint) {
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: "h1", RecoveryPoints: list, ScanId: scan, More: more})
	}
	report("s1", true, rps("a", 3))
	if got := held(h, "h1"); len(got) != 4 || !got["rp1"] {
		t.Fatalf("after the first part, h1 holds %v (nothing is withdrawn before the scan ends)", got)
	}
	report("s1", true, rps("b", 2))
	report("s1", false, []*restorev1.RecoveryPoint{{Id: "rp1", Tenant: "acme", Asset: "web", Valid: true}})
	if got := held(h, "h1"); len(got) != 6 || !got["a-2"] || !got["b-1"] || !got["rp1"] {
		t.Fatalf("after scan s1, h1 holds %v", got)
	}
	if n := h.st.Read(nil).Host("h1").RecoveryPoints; n != 6 {
		t.Fatalf("host counts %d recovery points, want 6", n)
	}
	// Scan s2 is cut short (an agent restart): nothing goes.
	report("s2", true, rps("a", 1))
	if got := held(h, "h1"); len(got) != 6 {
		t.Fatalf("an unfinished scan withdrew: %v", got)
	}
	// Scan s3 lists only a-0 and b-0: the rest go, the restore's rp1 too.
	report("s3", true, rps("a", 1))
	report("s3", false, rps("b", 1))
	if got := held(h, "h1"); len(got) != 2 || !got["a-0"] || !got["b-0"] {
		t.Fatalf("after scan s3, h1 holds %v", got)
	}
	if h.st.Read(nil).ScanMark("h1", "a-2") != nil {
		t.Fatal("a withdrawn recovery point kept its scan mark")
	}
	// The whole set in one report, as before parts existed.
	report("", false, rps("c", 2))
	if got := held(h, "h1"); len(got) != 2 || !got["c-0"] || !got["c-1"] {
		t.Fatalf("after a whole-set report, h1 holds %v", got)
	}
}
