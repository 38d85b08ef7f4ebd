// Package scheduler runs the leader-only control loops: placing PENDING
// restores on hosts (placement.go, by lifecycle.Fit), marking hosts DOWN
// when their heartbeats stop (heartbeats.go: heartbeats live only in the
// leader's memory; only a change of host state is written to raft),
// expiring restores and snapshots whose lease ran out, starting the runs of
// verification policies (policies.go) and pruning what ended past its
// retention (prune.go). Every decision is computed here, with the clock,
// and written as one raft command; the FSM checks it again and records it.
// Each pass reads through the store's indexes only what is due.
//
// What it must not do: write the store (only raft entries), or decide a
// state change the lifecycle tables do not allow.
package scheduler
