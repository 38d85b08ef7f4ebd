// Package server wires one restored server together: listeners, raft, the
// state store, the gRPC services, the HTTP gateway and the leader-only
// loops, and runs the leadership duties (publishing this server's address,
// minting the bootstrap admin token, starting the scheduler).
package server

import (
	"log/slog"
	"time"

	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/scheduler"
)

// Config is everything a server needs.
type Config struct {
	// DataDir holds raft's log and snapshots, node-id and bootstrap-token.
	DataDir string
	// GRPCAddr, HTTPAddr and RaftAddr are listen addresses (port 0 picks one).
	GRPCAddr string
	HTTPAddr string
	RaftAddr string
	// AdvertiseAddr is the host (name or address) other machines reach this
	// server at; each listener is advertised with it and its own port. A
	// server listening on every interface needs it.
	AdvertiseAddr string
	// Join is the gRPC address of a server of an existing cluster; empty
	// means bootstrap a new one-server cluster when there is no state.
	Join string
	// JoinToken is an admin token used to join.
	JoinToken string
	// CAFingerprint pins the CA of the cluster being joined ("sha256:…").
	CAFingerprint string
	// TLSCA, TLSCert and TLSKey are the operator's own cluster CA and this
	// server's certificate and key (PEM files); TLSCAKey, when given, lets
	// this server issue certificates. Empty: <data-dir>/tls, made or
	// enrolled automatically.
	TLSCA, TLSCert, TLSKey, TLSCAKey string
	// CertLifetime is how long the certificates this server issues itself
	// are valid (default 90 days); they are renewed after two thirds.
	CertLifetime time.Duration
	// NodeID overrides the raft server id (default: kept in <data-dir>/node-id).
	NodeID string
	// HeartbeatInterval and HeartbeatTTL for agents.
	HeartbeatInterval time.Duration
	HeartbeatTTL      time.Duration
	// SchedulerInterval is the longest time between scheduler passes.
	SchedulerInterval time.Duration
	// RaftHeartbeatTimeout, RaftElectionTimeout and RaftLeaderLease tune raft.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	RaftLeaderLease      time.Duration
	// TokenUseInterval is how often this server writes the last-used times
	// of the tokens it authenticated (one raft entry per interval at most;
	// default one minute).
	TokenUseInterval time.Duration
	// SnapshotThreshold is the number of raft entries between snapshots.
	SnapshotThreshold uint64
	// Retention says how long what has ended is kept before the leader
	// prunes it (zero fields: scheduler.DefaultRetention; negative: forever).
	Retention scheduler.Retention
	// NoVNCDir holds noVNC for the console pages (make web installs it).
	NoVNCDir string
	// Logger is the one logger.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.Retention.Restores, &scheduler.DefaultRetention.Restores},
		{&c.Retention.Snapshots, &scheduler.DefaultRetention.Snapshots},
		{&c.Retention.IdempotencyKeys, &scheduler.DefaultRetention.IdempotencyKeys},
		{&c.Retention.RevokedTokens, &scheduler.DefaultRetention.RevokedTokens},
		{&c.Retention.Verifications, &scheduler.DefaultRetention.Verifications},
		{&c.Retention.Audit, &scheduler.DefaultRetention.Audit},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.CertLifetime <= 0 {
		c.CertLifetime = pki.ServerLifetime
	}
	if c.NoVNCDir == "" {
		c.NoVNCDir = "web/node_modules/@novnc/novnc"
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = 10 * time.Second
	}
	if c.SchedulerInterval == 0 {
		c.SchedulerInterval = time.Second
	}
	if c.TokenUseInterval <= 0 {
		c.TokenUseInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
