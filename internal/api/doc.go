// Package api implements the public gRPC services (restore.v1) and the
// internal ClusterService on top of the state store and raft.
//
// Every call passes through the same steps, in this order:
//  1. forward: writes (and reads that ask for linearizable consistency) go
//     to the leader; the caller never needs to know who leads;
//  2. authn: the bearer token is checked against the state store;
//  3. authz: the method's role table (policy.go) says who may call it;
//  4. the handler validates input, decides ids and timestamps, checks tenant
//     visibility (another tenant's object is NotFound), and only then calls
//     raft Apply. Bad input never reaches the log.
package api
