// Package fsm applies raft log entries to the state store. Each entry is a
// raftv1.Envelope (command type + protobuf payload); Apply looks the type up
// in the command table (fsm.go) and runs that command's apply function
// inside one memdb write transaction. Apply functions are deterministic:
// every id, timestamp and decision that needs the clock or randomness is
// made before raft.Apply and carried in the payload. One file per resource;
// every state change of a restore or snapshot is decided by
// internal/lifecycle's tables.
//
// Apply returns a *Result: the object the command produced, or a gRPC status
// error (NotFound, AlreadyExists, FailedPrecondition) that the API returns
// as is. A failed command changes nothing.
//
// Forward compatibility: an entry of a command type this version does not
// know is skipped only when its envelope says skippable; otherwise the FSM
// halts (applies nothing more and refuses snapshots, readiness says why)
// rather than let this replica diverge, until the server is upgraded.
//
// What it must not do: read a clock, draw randomness or do I/O; make a
// decision the lifecycle tables or the capacity rule already make.
package fsm
