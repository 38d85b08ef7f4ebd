package store

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// tableRestoreCounts is derived: how many restores are in each state, kept
// in step by PutRestore and DeleteRestore in the same transaction and
// rebuilt by Load, so metrics never walk the restores. It is not in raft
// snapshots.
const tableRestoreCounts = "restore_counts"

type stateCount struct {
	State int
	N     int
}

func countsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableRestoreCounts, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.IntFieldIndex{Field: "State"}},
	}}
}

func addCount(txn *Txn, state restorev1.RestoreState, delta int) error {
	n := delta
	if cur, err := txn.First(tableRestoreCounts, "id", int(state)); err != nil {
		return err
	} else if cur != nil {
		n += cur.(*stateCount).N
	}
	if n < 0 {
		return fmt.Errorf("restore count of %s would go below zero", state)
	}
	return txn.Insert(tableRestoreCounts, &stateCount{State: int(state), N: n})
}

// PutRestore stores a new version of a restore (the FSM's only way to).
func PutRestore(txn *Txn, x *restorev1.Restore) error {
	prev, err := txn.First(TableRestores, "id", x.Id)
	switch {
	case err != nil:
		return err
	case prev != nil && prev.(*restorev1.Restore).State == x.State:
		// The counts stay as they are.
	case prev != nil:
		if err := addCount(txn, prev.(*restorev1.Restore).State, -1); err != nil {
			return err
		}
		fallthrough
	default:
		if err := addCount(txn, x.State, 1); err != nil {
			return err
		}
	}
	return txn.Insert(TableRestores, x)
}

// DeleteRestore removes a restore (the FSM's only way to).
func DeleteRestore(txn *Txn, x *restorev1.Restore) error {
	if err := addCount(txn, x.State, -1); err != nil {
		return err
	}
	return txn.Delete(TableRestores, x)
}

// RestoreCounts says how many restores are in each state.
func (r *Reader) RestoreCounts() map[restorev1.RestoreState]int {
	out := map[restorev1.RestoreState]int{}
	for _, o := range r.all(tableRestoreCounts, "id") {
		c := o.(*stateCount)
		out[restorev1.RestoreState(c.State)] = c.N
	}
	return out
}
