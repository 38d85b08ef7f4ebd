package scheduler

import (
	"time"

	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
)

// ExpiredSnapshots returns the snapshots whose lease ran out and whose
// release was not asked for yet.
func ExpiredSnapshots(r *store.Reader, now time.Time) []string {
	var ids []string
	for _, s := range r.Snapshots("") {
		if !lifecycle.MayRelease(s) || s.LeaseExpireTime == nil {
			continue
		}
		if !now.Before(s.LeaseExpireTime.AsTime()) {
			ids = append(ids, s.Id)
		}
	}
	return ids
}
