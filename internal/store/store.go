package store

import (
	"fmt"
	"sync"

	"github.com/hashicorp/go-memdb"
)

// Store holds the current memdb database. The FSM writes through WriteTxn;
// everyone else reads. Swap replaces the whole database after a snapshot
// restore and closes the previous Abandoned channel so watchers re-read.
type Store struct {
	mu      sync.RWMutex
	db      *memdb.MemDB
	abandon chan struct{}
}

// NewDB returns an empty database with the store's schema.
func NewDB() (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(Schema())
	if err != nil {
		return nil, fmt.Errorf("create state database: %w", err)
	}
	return db, nil
}

// New returns an empty store.
func New() (*Store, error) {
	db, err := NewDB()
	if err != nil {
		return nil, err
	}
	return &Store{db: db, abandon: make(chan struct{})}, nil
}

// ReadTxn opens a read transaction on the current database.
func (s *Store) ReadTxn() *memdb.Txn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Txn(false)
}

// Abandoned is closed when the database is swapped out.
func (s *Store) Abandoned() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.abandon
}

// Swap installs db as the current database and wakes every watcher.
func (s *Store) Swap(db *memdb.MemDB) {
	s.mu.Lock()
	old := s.abandon
	s.db = db
	s.abandon = make(chan struct{})
	s.mu.Unlock()
	close(old)
}
