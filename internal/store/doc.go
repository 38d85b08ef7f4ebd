// Package store owns the control plane's replicated state: a go-memdb
// database whose tables are registered once in tables.go (the registry that
// also gives the schema and the raft snapshot's write, read and rebuild),
// with the indexes the leader's passes read through (indexes.go: by state,
// by expiry, by end time, by asset, by host) and the derived restore counts
// the metrics read (counts.go). Only the raft FSM writes to it; API
// handlers and the leader's loops read from it.
//
// Objects are protobuf messages stored by pointer and treated as immutable:
// writers clone before changing. A raft snapshot restore builds a new
// database and swaps it in atomically (Store.Swap), waking every watcher.
//
// What it must not do: decide anything (the lifecycle rules are
// internal/lifecycle's, the decisions the FSM's and the scheduler's).
package store
