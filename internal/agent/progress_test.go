package agent

import (
	"testing"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

func TestProgressFiguresGiveRateAndTimeLeft(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pr            hypervisor.Progress
		elapsed       time.Duration
		rate, etaSecs int64
	}{
		{"half way in 10 s", hypervisor.Progress{Done: 50 << 20, Total: 100 << 20}, 10 * time.Second, 5 << 20, 10},
		{"nothing yet", hypervisor.Progress{Done: 0, Total: 100}, time.Second, 0, 0},
		{"done", hypervisor.Progress{Done: 100, Total: 100}, time.Second, 100, 0},
		{"not counted", hypervisor.Progress{Step: "converting"}, time.Second, 0, 0},
		{"a left-over second rounds up", hypervisor.Progress{Done: 10, Total: 25}, time.Second, 10, 2},
	} {
		got := Figures(tc.pr, tc.elapsed)
		if got.BytesPerSecond != tc.rate || got.EtaSeconds != tc.etaSecs || got.DoneBytes != tc.pr.Done || got.TotalBytes != tc.pr.Total {
			t.Errorf("%s: %+v, want %d B/s and %d s", tc.name, got, tc.rate, tc.etaSecs)
		}
	}
}
