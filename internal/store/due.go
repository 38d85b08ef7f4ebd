package store

import (
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// upTo returns at most limit objects whose time in a time index is at or
// before t, latest first: only those are read, never the rest of the table.
func (r *Reader) upTo(table, index string, t time.Time, limit int) []any {
	it, err := r.txn.ReverseLowerBound(table, index, t)
	if err != nil {
		return nil
	}
	var out []any
	for obj := it.Next(); obj != nil && len(out) < limit; obj = it.Next() {
		r.visited++
		out = append(out, obj)
	}
	return out
}

// Visited is how many objects this reader has read (tests prove with it
// that a leader pass reads only what is due).
func (r *Reader) Visited() int { return r.visited }

// RestoresExpiringBy returns restores a lease can still end whose lease
// ends at or before t (at most limit).
func (r *Reader) RestoresExpiringBy(t time.Time, limit int) []*restorev1.Restore {
	return as[*restorev1.Restore](r.upTo(TableRestores, indexExpiry, t, limit))
}

// RestoresEndedBy returns terminal restores with nothing left on a host
// that last changed at or before t (at most limit).
func (r *Reader) RestoresEndedBy(t time.Time, limit int) []*restorev1.Restore {
	return as[*restorev1.Restore](r.upTo(TableRestores, indexEnded, t, limit))
}

// SnapshotLeasesEndingBy returns snapshots a lease can still release
// whose lease ends at or before t (at most limit).
func (r *Reader) SnapshotLeasesEndingBy(t time.Time, limit int) []*restorev1.Snapshot {
	return as[*restorev1.Snapshot](r.upTo(TableSnapshots, indexLease, t, limit))
}

// SnapshotsEndedBy returns released or failed snapshots released at or
// before t (at most limit).
func (r *Reader) SnapshotsEndedBy(t time.Time, limit int) []*restorev1.Snapshot {
	return as[*restorev1.Snapshot](r.upTo(TableSnapshots, indexEnded, t, limit))
}

// VerificationsEndedBy returns verifications that ended at or before t (at
// most limit).
func (r *Reader) VerificationsEndedBy(t time.Time, limit int) []*restorev1.Verification {
	return as[*restorev1.Verification](r.upTo(TableVerifications, indexEnded, t, limit))
}

// IdempotencyKeysCreatedBy returns idempotency keys created at or before t
// (at most limit).
func (r *Reader) IdempotencyKeysCreatedBy(t time.Time, limit int) []*raftv1.IdempotencyKey {
	return as[*raftv1.IdempotencyKey](r.upTo(TableIdempotency, indexCreated, t, limit))
}

// TokensEndedBy returns tokens revoked or expired at or before t, never
// the bootstrap token (at most limit).
func (r *Reader) TokensEndedBy(t time.Time, limit int) []*raftv1.StoredToken {
	return as[*raftv1.StoredToken](r.upTo(TableTokens, indexEnded, t, limit))
}

func as[T any](objs []any) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(T))
	}
	return out
}
