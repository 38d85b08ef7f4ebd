package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	restoreapi "github.com/restored/restored/api"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/api"
	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/consoleweb"
	"github.com/restored/restored/internal/downloadweb"
	"github.com/restored/restored/internal/filesweb"
	"github.com/restored/restored/internal/fsm"
	"github.com/restored/restored/internal/gateway"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/liveness"
	"github.com/restored/restored/internal/metrics"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/raftnode"
	"github.com/restored/restored/internal/ratelimit"
	"github.com/restored/restored/internal/scheduler"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Server is one running restored.
type Server struct {
	cfg      Config
	log      *slog.Logger
	id       string
	store    *store.Store
	node     *raftnode.Node
	deps     *api.Deps
	fwd      *api.Forwarder
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	gateway  *gateway.Handler
	grpcLis  net.Listener
	httpLis  net.Listener
	tracker  *scheduler.Tracker
	certs    *certs
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start opens everything and serves in the background. It fails at once,
// with a message a person can act on, when the data dir is not writable or
// an address is in use.
func Start(cfg Config) (s *Server, err error) {
	cfg.defaults()
	log := cfg.Logger
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := checkAdvertise(cfg); err != nil {
		return nil, err
	}
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	grpcLis, err := listen("grpc", cfg.GRPCAddr)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { grpcLis.Close() })
	httpLis, err := listen("http", cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { httpLis.Close() })

	id, err := nodeID(cfg.DataDir, cfg.NodeID, cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	tc, err := loadCerts(cfg, id, log)
	if err != nil {
		return nil, err
	}
	// Servers alone speak raft and call each other; clients of the API may
	// come without a certificate (bearer tokens), agents with theirs.
	serversOnly := pki.Peer{Roles: []pki.Role{pki.RoleServer}}
	peerCreds := credentials.NewTLS(pki.ClientConfig(tc.pool, tc.keeper, "", serversOnly))
	st, err := store.New()
	if err != nil {
		return nil, err
	}
	f := fsm.New(st, log)
	node, err := raftnode.Open(raftnode.Config{
		ID: id, Dir: filepath.Join(cfg.DataDir, "raft"), Addr: cfg.RaftAddr, Advertise: raftAdvertise(cfg), Bootstrap: cfg.Join == "",
		HeartbeatTimeout: cfg.RaftHeartbeatTimeout, ElectionTimeout: cfg.RaftElectionTimeout,
		LeaderLeaseTimeout: cfg.RaftLeaderLease, SnapshotThreshold: cfg.SnapshotThreshold, MinFreeMiB: cfg.RaftMinFreeMiB, SegmentMiB: cfg.RaftSegmentMiB,
		ServerTLS: pki.ServerConfig(tc.keeper, tc.pool, serversOnly), ClientTLS: pki.ClientConfig(tc.pool, tc.keeper, "", serversOnly),
	}, f, log)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { node.Close() })

	keepAudit := cfg.Retention.Audit
	if keepAudit < 0 {
		keepAudit = 0 // forever
	}
	refusals, err := audit.OpenRefusals(filepath.Join(cfg.DataDir, "audit"), id, keepAudit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	cleanups = append(cleanups, func() { refusals.Close() })

	tracker := scheduler.NewTracker(time.Now)
	deps := &api.Deps{
		Store: st, Node: node, Log: log, Now: time.Now, Beats: tracker, Version: version.Version,
		ServerID: id, ApplyTimeout: 10 * time.Second,
		HeartbeatInterval: cfg.HeartbeatInterval, HeartbeatTTL: cfg.HeartbeatTTL,
		Tunnels: tunnel.NewHub(), Consoles: api.NewConsoles(), Downloads: api.NewDownloads(), FileBrowsers: api.NewFileBrowsers(), HTTPAddr: cfg.advertised(httpLis.Addr()),
		PeerCreds: peerCreds, CA: tc.ca, CertLifetime: cfg.CertLifetime, Refusals: refusals,
		Uses: auth.NewUses(),
		Limits: api.RateLimits{
			PerToken:     ratelimit.New(ratelimit.Limits{Rate: cfg.Limits.TokenRate, Burst: cfg.Limits.TokenBurst}, nil),
			AuthFailures: ratelimit.New(ratelimit.Limits{Rate: cfg.Limits.AuthFailureRate, Burst: cfg.Limits.AuthFailureBurst}, nil),
			Recorded:     ratelimit.New(ratelimit.Limits{Rate: 1, Burst: 10}, nil),
		},
	}
	// Clients of the API: with a certificate of the CA (servers, agents;
	// a removed host's agent is refused at the handshake) or without one.
	clients := pki.Peer{Revoked: func(c *x509.Certificate) bool {
		id, err := pki.IdentityOf(c)
		return err == nil && id.Role == pki.RoleAgent && st.Read(nil).AgentCertRevoked(id.Name, c)
	}}
	fwd := api.NewForwarder(deps)
	deps.Peers = fwd
	m := metrics.New(st, node)
	gs := grpc.NewServer(append(liveness.ServerOptions(),
		grpc.Creds(credentials.NewTLS(pki.ServerConfig(tc.keeper, tc.pool, clients))),
		grpc.MaxRecvMsgSize(gateway.MaxBodyBytes),
		grpc.MaxConcurrentStreams(cfg.Limits.GRPCMaxStreams),
		// Windows for bulk streams (image downloads through an agent's
		// tunnel), not the 64 KiB a stream starts with.
		grpc.InitialWindowSize(4<<20), grpc.InitialConnWindowSize(16<<20),
		grpc.ConnectionTimeout(cfg.Limits.GRPCConnectionTimeout),
		grpc.ChainUnaryInterceptor(m.UnaryInterceptor(), deps.UnaryInterceptor(fwd)),
		grpc.ChainStreamInterceptor(m.StreamInterceptor(), deps.StreamInterceptor()),
	)...)
	restorev1.RegisterRestoreServiceServer(gs, &api.RestoreService{Deps: deps})
	restorev1.RegisterRecoveryPointServiceServer(gs, &api.RecoveryPointService{Deps: deps})
	restorev1.RegisterVerificationServiceServer(gs, &api.VerificationService{Deps: deps})
	restorev1.RegisterVerificationPolicyServiceServer(gs, &api.VerificationPolicyService{Deps: deps})
	restorev1.RegisterGuestServiceServer(gs, &api.GuestService{Deps: deps})
	restorev1.RegisterSnapshotServiceServer(gs, &api.SnapshotService{Deps: deps})
	restorev1.RegisterHostServiceServer(gs, &api.HostService{Deps: deps})
	restorev1.RegisterAuditServiceServer(gs, &api.AuditService{Deps: deps})
	restorev1.RegisterAdminServiceServer(gs, &api.AdminService{Deps: deps})
	restorev1.RegisterAgentServiceServer(gs, &api.AgentService{Deps: deps})
	raftv1.RegisterClusterServiceServer(gs, &api.ClusterService{Deps: deps})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	ctx, cancel := context.WithCancel(context.Background())
	s = &Server{
		cfg: cfg, log: log, id: id, store: st, node: node, deps: deps, fwd: fwd, grpc: gs, health: hs,
		grpcLis: grpcLis, httpLis: httpLis, tracker: tracker, cancel: cancel, certs: tc,
	}
	gw, err := gateway.New(ctx, gateway.Options{
		GRPCAddr: grpcLis.Addr().String(), GRPCCreds: peerCreds, Ready: s.ready, Metrics: deps.MetricsHandler(m.Handler()), OpenAPI: restoreapi.OpenAPI, OpenAPI3: restoreapi.OpenAPI3,
		Routes: func(mux *http.ServeMux) {
			(&consoleweb.Handler{Consoles: deps.Consoles, Open: deps.OpenChannel, NoVNCDir: cfg.NoVNCDir, Log: log}).Register(mux)
			(&filesweb.Handler{Browsers: deps.FileBrowsers, RP: &api.RecoveryPointService{Deps: deps}, Log: log}).Register(mux)
			(&downloadweb.Handler{Downloads: deps.Downloads, Open: deps.OpenChannel, Live: func(id string) bool {
				x := st.Read(nil).Restore(id)
				return x != nil && x.State == lifecycle.Running
			}, Log: log}).Register(mux)
		},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	s.gateway = gw
	s.http = &http.Server{Handler: gw, TLSConfig: pki.ServerConfig(tc.keeper, tc.pool, clients),
		ReadHeaderTimeout: cfg.Limits.HTTPReadHeaderTimeout, ReadTimeout: cfg.Limits.HTTPReadTimeout,
		WriteTimeout: cfg.Limits.HTTPWriteTimeout, IdleTimeout: cfg.Limits.HTTPIdleTimeout}

	s.wg.Add(5)
	go func() {
		defer s.wg.Done()
		tc.renewals(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.tokenUses(ctx)
	}()
	go func() {
		defer s.wg.Done()
		if err := gs.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.http.ServeTLS(httpLis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.leadership(ctx)
	}()
	if cfg.Join != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.join(ctx)
		}()
	}
	log.Info("restored started", "version", version.Version, "id", id, "grpc", grpcLis.Addr().String(),
		"http", httpLis.Addr().String(), "raft", node.Addr(), "data_dir", cfg.DataDir)
	return s, nil
}

// tokenUses writes the last-used times of the tokens this server
// authenticated, once per TokenUseInterval (a server stopping loses at
// most one interval's: last-used times are "to within a minute").
func (s *Server) tokenUses(ctx context.Context) {
	t := time.NewTicker(s.cfg.TokenUseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.deps.FlushTokenUses(ctx); err != nil {
				s.log.Debug("token last-used times wait for the next flush", "err", err)
			}
		}
	}
}

// ID is this server's raft id.
func (s *Server) ID() string { return s.id }

// GRPCAddr is the gRPC address others dial: the advertised one.
func (s *Server) GRPCAddr() string { return s.cfg.advertised(s.grpcLis.Addr()) }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// RaftAddr is the raft address.
func (s *Server) RaftAddr() string { return s.node.Addr() }

// Node exposes raft (for tests and the cluster view).
func (s *Server) Node() *raftnode.Node { return s.node }

// Store exposes the state store (for tests).
func (s *Server) Store() *store.Store { return s.store }

// CACert is the file of the cluster CA's certificate, which clients of
// this server trust.
func (s *Server) CACert() string { return s.certs.files.CA() }

// CAFingerprint is the cluster CA's fingerprint, which joining servers and
// agents pin.
func (s *Server) CAFingerprint() string { return s.certs.ca.Fingerprint() }

// BootstrapTokenPath is where the first server writes the admin token.
func (s *Server) BootstrapTokenPath() string { return filepath.Join(s.cfg.DataDir, "bootstrap-token") }

func (s *Server) ready() (bool, string) {
	if h := s.node.FSM.Halted(); h != nil {
		return false, h.Error()
	}
	leader, _ := s.node.Leader()
	if leader == "" {
		return false, "no raft leader is known"
	}
	commit := s.node.CommitIndex()
	if applied := s.node.AppliedIndex(); applied < commit {
		return false, fmt.Sprintf("catching up: applied %d of %d", applied, commit)
	}
	return true, ""
}

// Stop shuts everything down. In-flight streams are cancelled.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		defer done()
		_ = s.http.Shutdown(shutdownCtx)
		stopped := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			s.grpc.Stop()
		}
		s.wg.Wait()
		s.gateway.Close()
		s.fwd.Close()
		if err := s.node.Close(); err != nil {
			s.log.Warn("raft shutdown", "err", err)
		}
		_ = s.deps.Refusals.Close()
		s.log.Info("restored stopped", "id", s.id)
	})
}
