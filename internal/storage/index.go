package storage

// Index is one scan of a repository, looked up by recovery point id. It is
// never changed: a rescan makes a new one.
type Index struct {
	byID map[string]RecoveryPoint
	all  []RecoveryPoint
}

// NewIndex indexes the recovery points of a scan.
func NewIndex(rps []RecoveryPoint) *Index {
	ix := &Index{byID: make(map[string]RecoveryPoint, len(rps)), all: rps}
	for _, rp := range rps {
		ix.byID[rp.ID] = rp
	}
	return ix
}

// Lookup returns the recovery point with id.
func (ix *Index) Lookup(id string) (RecoveryPoint, bool) {
	if ix == nil {
		return RecoveryPoint{}, false
	}
	rp, ok := ix.byID[id]
	return rp, ok
}

// All returns every recovery point, ordered by id.
func (ix *Index) All() []RecoveryPoint {
	if ix == nil {
		return nil
	}
	return ix.all
}
