package scheduler

import (
	"testing"
	"time"
)

func TestTrackerGivesANewLeaderAGracePeriod(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := NewTracker(func() time.Time { return now })
	tr.Beat("h1")
	now = now.Add(30 * time.Second)
	if got := tr.Silent("h1"); got != 30*time.Second {
		t.Fatalf("silent %v, want 30s", got)
	}
	if got := tr.Silent("never-seen"); got != 30*time.Second {
		t.Fatalf("a host never heard from counts from leadership start: %v", got)
	}
	tr.Reset()
	if got := tr.Silent("h1"); got != 0 {
		t.Fatalf("after Reset silent %v, want 0", got)
	}
	now = now.Add(time.Second)
	tr.Beat("h1")
	if got := tr.Silent("h1"); got != 0 {
		t.Fatalf("after Beat silent %v", got)
	}
}
