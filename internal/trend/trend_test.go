package trend

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func runs(boots ...int64) []*restorev1.Verification {
	var vs []*restorev1.Verification
	for i, b := range boots {
		verdict := restorev1.Verdict_VERDICT_PASSED
		if b == 0 {
			verdict = restorev1.Verdict_VERDICT_FAILED
		}
		vs = append(vs, &restorev1.Verification{Id: string(rune('a' + i)), Verdict: verdict, TimeToBootMs: b})
	}
	return vs
}

func TestTrendSummarisesTheNewestRuns(t *testing.T) {
	tests := []struct {
		name              string
		vs                []*restorev1.Verification
		lastN             int
		runs              int32
		passRate          float64
		p50, p95          int64
		slower            bool
		lastVerdictPassed bool
	}{
		{"no runs", nil, 0, 0, 0, 0, 0, false, false},
		{"steady", runs(8000, 8100, 7900, 8050, 8000), 0, 5, 1, 8000, 8100, false, true},
		{"the newest is much slower", runs(20000, 8100, 7900, 8050, 8000), 0, 5, 1, 8050, 20000, true, true},
		{"slower needs history", runs(20000, 8000), 0, 2, 1, 8000, 20000, false, true},
		{"failures count against the pass rate, not the boot times", runs(0, 8000, 8000, 0), 0, 4, 0.5, 8000, 8000, false, false},
		{"only the newest N", runs(9000, 9000, 1, 1, 1, 1), 2, 2, 1, 9000, 9000, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute("acme", "web", tt.vs, tt.lastN)
			if got.Runs != tt.runs || got.PassRate != tt.passRate || got.TimeToBootP50Ms != tt.p50 || got.TimeToBootP95Ms != tt.p95 || got.Slower != tt.slower ||
				(got.LastVerdict == restorev1.Verdict_VERDICT_PASSED) != tt.lastVerdictPassed {
				t.Fatalf("got runs=%d pass=%v p50=%d p95=%d slower=%v last=%v", got.Runs, got.PassRate, got.TimeToBootP50Ms, got.TimeToBootP95Ms, got.Slower, got.LastVerdict)
			}
		})
	}
}
