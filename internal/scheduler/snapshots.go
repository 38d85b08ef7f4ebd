package scheduler

import (
	"time"

	"github.com/restored/restored/internal/store"
)

// ExpiredSnapshots returns the snapshots whose lease ran out and whose
// release was not asked for yet (at most pruneBatch a pass).
func ExpiredSnapshots(r *store.Reader, now time.Time) []string {
	var ids []string
	for _, s := range r.SnapshotLeasesEndingBy(now, pruneBatch) {
		ids = append(ids, s.Id)
	}
	return ids
}
