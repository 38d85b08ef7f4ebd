// Package fsm applies raft log entries to the state store. Each entry is a
// raftv1.Envelope (command type + protobuf payload); Apply looks the type up
// in a dispatch table and runs that command's apply function inside one
// memdb write transaction. Apply functions are deterministic: every id,
// timestamp and decision that needs the clock or randomness is made before
// raft.Apply and carried in the payload. One file per resource.
//
// Apply returns a *Result: the object the command produced, or a gRPC status
// error (NotFound, AlreadyExists, FailedPrecondition) that the API returns
// as is. A failed command changes nothing.
package fsm
