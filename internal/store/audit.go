package store

import (
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// AuditEventsBy returns up to limit events recorded at or before t.
func (r *Reader) AuditEventsBy(t time.Time, limit int) []*restorev1.AuditEvent {
	return as[*restorev1.AuditEvent](r.upTo(TableAudit, indexCreated, t, limit))
}

// AuditEventsFrom returns up to limit recorded writes that match, at or
// after t, oldest first (only those are read).
func (r *Reader) AuditEventsFrom(t time.Time, match func(*restorev1.AuditEvent) bool, limit int) []*restorev1.AuditEvent {
	it, err := r.txn.LowerBound(TableAudit, indexCreated, t)
	if err != nil {
		return nil
	}
	var out []*restorev1.AuditEvent
	for o := it.Next(); o != nil && len(out) < limit; o = it.Next() {
		r.visited++
		if ev := o.(*restorev1.AuditEvent); match(ev) {
			out = append(out, ev)
		}
	}
	return out
}
