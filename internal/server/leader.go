package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/api"
	"github.com/restored/restored/internal/auth"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/scheduler"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// leadership starts the leader duties when this server becomes leader and
// stops them when it loses leadership.
func (s *Server) leadership(ctx context.Context) {
	var stop context.CancelFunc
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	serving := healthpb.HealthCheckResponse_UNKNOWN
	for {
		// The gRPC health service says what /readyz says.
		want := healthpb.HealthCheckResponse_NOT_SERVING
		if ok, _ := s.ready(); ok {
			want = healthpb.HealthCheckResponse_SERVING
		}
		if want != serving {
			s.health.SetServingStatus("", want)
			serving = want
		}
		leading := s.node.IsLeader()
		switch {
		case leading && stop == nil:
			lctx, cancel := context.WithCancel(ctx)
			stop = cancel
			s.log.Info("this server is now the leader", "id", s.id)
			go s.leaderDuties(lctx)
		case !leading && stop != nil:
			s.log.Info("this server is no longer the leader", "id", s.id)
			stop()
			stop = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) leaderDuties(ctx context.Context) {
	// Wait until everything committed by earlier leaders is applied here.
	if err := s.node.Raft.Barrier(10 * time.Second).Error(); err != nil {
		s.log.Warn("leader barrier failed", "err", err)
		return
	}
	self := &restorev1.Server{Id: s.id, RaftAddress: s.node.Addr(), GrpcAddress: s.GRPCAddr()}
	if cur := s.store.Read(nil).Server(s.id); cur == nil || cur.GrpcAddress != self.GrpcAddress || cur.RaftAddress != self.RaftAddress {
		if _, err := s.node.Apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: self}, 10*time.Second); err != nil {
			s.log.Warn("publish this server's address", "err", err)
		}
	}
	if s.cfg.Join == "" {
		if err := s.ensureBootstrapToken(); err != nil {
			s.log.Error("bootstrap admin token", "err", err)
		}
	}
	loops := &scheduler.Loops{
		Store: s.store, Raft: s.node, Tracker: s.tracker, Log: s.log, Now: time.Now,
		HeartbeatTTL: s.cfg.HeartbeatTTL, Interval: s.cfg.SchedulerInterval, Retention: s.cfg.Retention,
	}
	loops.Run(ctx)
}

// ensureBootstrapToken mints the first admin token once per cluster and
// writes it to <data-dir>/bootstrap-token (0600). Only the path is logged.
func (s *Server) ensureBootstrapToken() error {
	for _, t := range s.store.Read(nil).Tokens() {
		if t.Bootstrap {
			return nil
		}
	}
	path := s.BootstrapTokenPath()
	tok, secret := api.NewToken(api.TokenOptions{Role: auth.RoleAdmin, Description: "bootstrap admin token"}, time.Now())
	tok.Bootstrap = true
	// Write the secret first (so it is never lost), but let the file appear
	// under its name only once the token works.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if _, err := s.node.Apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: tok}, 10*time.Second); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	s.log.Info("wrote the bootstrap admin token; use it to create tenants and tokens", "path", path)
	return nil
}

// join asks an existing cluster to add this server, retrying until it works.
func (s *Server) join(ctx context.Context) {
	conn, err := grpc.NewClient(s.cfg.Join, grpc.WithTransportCredentials(s.deps.PeerCreds))
	if err != nil {
		s.log.Error("join: bad address", "join", s.cfg.Join, "err", err)
		return
	}
	defer conn.Close()
	client := raftv1.NewClusterServiceClient(conn)
	req := &raftv1.JoinRequest{Server: &restorev1.Server{Id: s.id, RaftAddress: s.node.Addr(), GrpcAddress: s.GRPCAddr()}}
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+s.cfg.JoinToken)
		resp, err := client.Join(cctx, req)
		cancel()
		if err == nil {
			s.log.Info("joined the cluster", "via", s.cfg.Join, "leader", resp.LeaderId)
			return
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return
		}
		s.log.Warn("join failed; retrying", "via", s.cfg.Join, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// MintToken creates a token directly through raft (this server must lead).
// restored --dev uses it to give its embedded agent a token.
func (s *Server) MintToken(role auth.Role, description string) (string, error) {
	tok, secret := api.NewToken(api.TokenOptions{Role: role, Description: description}, time.Now())
	if _, err := s.node.Apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: tok}, 10*time.Second); err != nil {
		return "", err
	}
	return secret, nil
}

// WaitLeader waits until this server leads and has published itself.
func (s *Server) WaitLeader(ctx context.Context) error {
	for {
		if s.node.IsLeader() && s.store.Read(nil).Server(s.id) != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MintJoinToken creates a join token for host directly through raft (this
// server must lead) and returns its secret. restored --dev uses it for its
// embedded agent.
func (s *Server) MintJoinToken(hostID string, ttl time.Duration) (string, error) {
	id, secret := auth.NewJoinToken()
	now := time.Now()
	t := &raftv1.StoredJoinToken{Token: &restorev1.JoinToken{Id: id, HostId: hostID, CreateTime: timestamppb.New(now),
		ExpireTime: timestamppb.New(now.Add(ttl))}, SecretSha256: auth.Hash(secret)}
	if _, err := s.node.Apply(raftv1.CommandType_COMMAND_TYPE_CREATE_JOIN_TOKEN, &raftv1.CreateJoinToken{Token: t}, 10*time.Second); err != nil {
		return "", err
	}
	return secret, nil
}
