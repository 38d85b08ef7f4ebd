package agent

import (
	"sync/atomic"

	"github.com/restored/restored/internal/storage"
)

// catalog is the repository as last scanned: an index that a rescan
// replaces whole, read without a lock.
type catalog struct{ ix atomic.Pointer[storage.Index] }

func (c *catalog) replace(ix *storage.Index) { c.ix.Store(ix) }

// lookup returns a recovery point of the last scan.
func (c *catalog) lookup(id string) (storage.RecoveryPoint, bool) { return c.ix.Load().Lookup(id) }
