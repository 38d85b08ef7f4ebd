// Package e2e holds end-to-end tests against real restored servers: in
// process (real gRPC and HTTP servers on loopback, real raft with its
// on-disk log) and as separate processes (the three-server cluster test).
// The helpers read like the user's story: env := startServer(t);
// partner := env.partner("acme"); agent := env.agent("kvm-01", rp...).
package e2e
