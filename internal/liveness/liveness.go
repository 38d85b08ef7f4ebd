// Package liveness owns how each end of a long-lived gRPC connection
// (agent to server, server to server) notices that the other end is gone
// when no packet says so (a cut link, a partition, a host that froze): the
// client's keepalive pings, the server's enforcement of them and its own
// pings. Both ends take their options from here, so they always agree (a
// client that pings more often than the server permits is disconnected).
// It must not decide what to do once a peer is gone: the agent and the
// scheduler decide that.
package liveness

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

const (
	// ClientPing is how long a client's connection may be idle before it
	// pings; ClientPingTimeout how long it waits for the answer.
	ClientPing        = 5 * time.Second
	ClientPingTimeout = 3 * time.Second
	// MinClientPing is the most often the server lets a client ping.
	MinClientPing = 4 * time.Second
	// ServerPing and ServerPingTimeout: the server pings an idle client
	// and drops it (its streams and its tunnel) when it does not answer.
	ServerPing        = 10 * time.Second
	ServerPingTimeout = 5 * time.Second
)

// DialOptions are a client's keepalive options: a connection to a server
// that stopped answering fails within ClientPing+ClientPingTimeout.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: ClientPing, Timeout: ClientPingTimeout, PermitWithoutStream: true,
	})}
}

// ServerOptions are a server's keepalive options: clients may ping as
// often as DialOptions makes them, and a client that stopped answering is
// dropped within ServerPing+ServerPingTimeout.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: MinClientPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ServerPing, Timeout: ServerPingTimeout}),
	}
}
