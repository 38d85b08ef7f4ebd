package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/raftnode"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/tunnel"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// HeartbeatSink records agent heartbeats in the leader's memory.
type HeartbeatSink interface {
	Beat(hostID string)
}

// Deps is what every service needs.
type Deps struct {
	Store *store.Store
	Node  *raftnode.Node
	Log   *slog.Logger
	// Now is the clock (time.Now in production).
	Now func() time.Time
	// Beats receives heartbeats (leader memory).
	Beats HeartbeatSink
	// Version is the server software version.
	Version string
	// ServerID is this server's raft id.
	ServerID string
	// ApplyTimeout bounds one raft write.
	ApplyTimeout time.Duration
	// HeartbeatInterval and HeartbeatTTL are told to agents.
	HeartbeatInterval time.Duration
	HeartbeatTTL      time.Duration
	// Tunnels are the hosts' tunnels connected to this server.
	Tunnels *tunnel.Hub
	// Peers reaches the other servers (a host's tunnel may be on another).
	Peers *Forwarder
	// Consoles holds the console tokens this server minted.
	Consoles *Consoles
	// Downloads holds the download tokens this server minted.
	Downloads *Downloads
	// FileBrowsers holds the file browser tokens this server minted.
	FileBrowsers *FileBrowsers
	// HTTPAddr is this server's HTTP address (console URLs of gRPC callers).
	HTTPAddr string
	// PeerCreds are this server's credentials when it calls another server
	// (forwarding, asking peers): mutual TLS, servers only.
	PeerCreds credentials.TransportCredentials
	// CA is the cluster CA; with its key it issues joining servers'
	// certificates (valid CertLifetime).
	CA           *pki.CA
	CertLifetime time.Duration
	// Refusals records the calls this server refuses before raft (nil: not
	// recorded, in unit tests).
	Refusals *audit.Refusals
	// Uses collects the tokens this server authenticated, written to raft
	// in batches (FlushTokenUses; nil: not recorded).
	Uses *auth.Uses
	// Limits are the rate limits per caller.
	Limits RateLimits
}

// bearer authenticates a bearer secret now and notes the token's use.
func (d *Deps) bearer(secret string) (*auth.Principal, error) {
	now := d.Now()
	p, err := auth.Authenticate(d.Store.Read(nil), secret, now)
	if err == nil {
		d.Uses.Note(p.TokenID, now)
	}
	return p, err
}

// inLog marks a call whose write reached the raft log: its outcome, a
// refusal by the state machine too, is audited from the log.
type inLog struct{ written bool }

type inLogKey struct{}

func (d *Deps) apply(ctx context.Context, t raftv1.CommandType, msg proto.Message) (proto.Message, error) {
	out, err := d.Node.ApplyAs(t, msg, d.ApplyTimeout, audit.Context(ctx, d.ServerID, d.Now()))
	if m, ok := ctx.Value(inLogKey{}).(*inLog); ok && (err == nil || status.Code(err) != codes.Unavailable) {
		m.written = true
	}
	return out, err
}
