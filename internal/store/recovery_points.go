package store

import raftv1 "github.com/restored/restored/internal/gen/raft/v1"

// ScanMark is which scan of host last listed recovery point id, or nil.
func (r *Reader) ScanMark(host, id string) *raftv1.ScanMark {
	m, _ := r.first(TableScanMarks, "id", host, id).(*raftv1.ScanMark)
	return m
}
