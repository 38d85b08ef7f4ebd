// Package scheduler runs the leader-only control loops: placing PENDING
// restores on hosts (placement.go), marking hosts DOWN when their heartbeats
// stop (heartbeats.go: heartbeats live only in the leader's memory; only a
// change of host state is written to raft), and expiring restores whose lease
// ran out (leases.go). Every decision is computed here, with the clock, and
// written as one raft command; the FSM only records it.
package scheduler
