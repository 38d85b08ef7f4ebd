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
	// Limits bound what one caller or connection may take.
	Limits Limits
	// SnapshotThreshold is the number of raft entries between snapshots.
	SnapshotThreshold uint64
	// RaftMinFreeMiB is the free space the raft directory keeps in reserve:
	// below it writes are refused (0: raftnode.DefaultMinFreeMiB;
	// negative: none).
	RaftMinFreeMiB int64
	// RaftSegmentMiB is the size of the raft log's segment files (0: 64).
	RaftSegmentMiB int64
	// Retention says how long what has ended is kept before the leader
	// prunes it (zero fields: scheduler.DefaultRetention; negative: forever).
	Retention scheduler.Retention
	// NoVNCDir holds noVNC for the console pages (make web installs it).
	NoVNCDir string
	// Logger is the one logger.
	Logger *slog.Logger
}

// Limits are the API's limits per caller and per connection. Zero fields
// take DefaultLimits; a negative rate turns that limit off.
type Limits struct {
	// TokenRate and TokenBurst: requests (and stream opens) per second one
	// bearer token may make on this server.
	TokenRate  float64
	TokenBurst int
	// AuthFailureRate and AuthFailureBurst: failed authentications per
	// second one client address may make before it is refused outright.
	AuthFailureRate  float64
	AuthFailureBurst int
	// HTTP: how long a client may take to send its headers and its
	// request, how long a response may take, how long an idle keep-alive
	// connection is kept. Streams (watch, console) are exempt from the
	// read and write timeouts.
	HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// GRPCMaxStreams is how many streams one gRPC connection may have open
	// at once; GRPCConnectionTimeout how long a new connection has to
	// finish its TLS handshake.
	GRPCMaxStreams        uint32
	GRPCConnectionTimeout time.Duration
}

// DefaultLimits are generous for a partner portal that sends every user's
// calls with one token, and stop one caller from taking a server.
var DefaultLimits = Limits{
	TokenRate: 500, TokenBurst: 1000, AuthFailureRate: 2, AuthFailureBurst: 20,
	HTTPReadHeaderTimeout: 10 * time.Second, HTTPReadTimeout: time.Minute, HTTPWriteTimeout: 2 * time.Minute, HTTPIdleTimeout: 2 * time.Minute,
	GRPCMaxStreams: 1000, GRPCConnectionTimeout: 10 * time.Second,
}

func (l *Limits) defaults() {
	d := DefaultLimits
	for _, f := range []struct{ v, def *float64 }{{&l.TokenRate, &d.TokenRate}, {&l.AuthFailureRate, &d.AuthFailureRate}} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *int }{{&l.TokenBurst, &d.TokenBurst}, {&l.AuthFailureBurst, &d.AuthFailureBurst}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&l.HTTPReadHeaderTimeout, &d.HTTPReadHeaderTimeout}, {&l.HTTPReadTimeout, &d.HTTPReadTimeout},
		{&l.HTTPWriteTimeout, &d.HTTPWriteTimeout}, {&l.HTTPIdleTimeout, &d.HTTPIdleTimeout},
		{&l.GRPCConnectionTimeout, &d.GRPCConnectionTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.GRPCMaxStreams == 0 {
		l.GRPCMaxStreams = d.GRPCMaxStreams
	}
}

func (c *Config) defaults() {
	c.Limits.defaults()
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
