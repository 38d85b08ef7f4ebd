// Package api implements the public gRPC services (restore.v1) and the
// internal ClusterService on top of the state store and raft.
//
// Every call passes through the same steps, in this order:
//  1. forward: writes (and reads that ask for linearizable consistency) go
//     to the leader; the caller never needs to know who leads;
//  2. authn: the bearer token is checked against the state store;
//  3. authz: the method's rule (policy.go, keyed by the generated method
//     names) says who may call it and where it runs;
//  4. the handler validates input, decides ids and timestamps, checks tenant
//     visibility (another tenant's object is NotFound), and only then calls
//     raft Apply. Bad input never reaches the log.
//
// What it must not do: decide a restore's or snapshot's next state (it asks
// internal/lifecycle), write the store (only the FSM does), or embed its
// request messages in raft entries (internal/proto has their own).
package api
