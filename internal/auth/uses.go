package auth

import (
	"sync"
	"time"
)

// Uses remembers when each token was last used on this server, between the
// batches in which they are written to raft (a token's last-used time is
// never a raft entry per call).
type Uses struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// NewUses returns an empty record.
func NewUses() *Uses { return &Uses{last: map[string]time.Time{}} }

// Note records that token id was used at t.
func (u *Uses) Note(id string, t time.Time) {
	if u == nil || id == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if t.After(u.last[id]) {
		u.last[id] = t
	}
}

// Take returns the uses noted since the last Take and forgets them.
func (u *Uses) Take() map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.last
	u.last = map[string]time.Time{}
	return out
}

// Restore puts back uses a failed write did not record (newer notes win).
func (u *Uses) Restore(m map[string]time.Time) {
	for id, t := range m {
		u.Note(id, t)
	}
}
