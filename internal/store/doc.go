// Package store owns the control plane's replicated state: a go-memdb
// database of tenants, tokens, restores, hosts, recovery points, servers and
// idempotency keys. Only the raft FSM writes to it; API handlers read from it.
//
// Objects are protobuf messages stored by pointer and treated as immutable:
// writers clone before changing. A raft snapshot restore builds a new
// database and swaps it in atomically (Store.Swap), waking every watcher.
package store
