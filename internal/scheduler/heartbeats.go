package scheduler

import (
	"sync"
	"time"
)

// Tracker keeps the last heartbeat of each host in memory.
type Tracker struct {
	mu    sync.Mutex
	now   func() time.Time
	last  map[string]time.Time
	since time.Time // when this server became leader
}

// NewTracker returns an empty tracker.
func NewTracker(now func() time.Time) *Tracker {
	return &Tracker{now: now, last: map[string]time.Time{}, since: now()}
}

// Beat records a heartbeat now.
func (t *Tracker) Beat(hostID string) {
	t.mu.Lock()
	t.last[hostID] = t.now()
	t.mu.Unlock()
}

// Reset forgets every heartbeat and starts a grace period: a new leader
// gives every host a full TTL before calling it DOWN.
func (t *Tracker) Reset() {
	t.mu.Lock()
	t.last = map[string]time.Time{}
	t.since = t.now()
	t.mu.Unlock()
}

// Silent reports how long a host has not been heard from.
func (t *Tracker) Silent(hostID string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.last[hostID]
	if !ok || last.Before(t.since) {
		last = t.since
	}
	return t.now().Sub(last)
}
