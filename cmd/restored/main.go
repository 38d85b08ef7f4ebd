// Command restored is the Restored control-plane server: the public gRPC and
// REST API, raft-replicated state and the leader's scheduler.
//
// Every flag can also be set with an environment variable RESTORED_<FLAG>
// (for example RESTORED_DATA_DIR) or in a JSON config file (--config) whose
// keys are the flag names; the command line wins over the environment, which
// wins over the file.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/restored/restored/internal/agent"
	"github.com/restored/restored/internal/flagenv"
	"github.com/restored/restored/internal/raftnode"
	"github.com/restored/restored/internal/scheduler"
	"github.com/restored/restored/internal/server"
	"github.com/restored/restored/internal/version"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "restored:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("restored", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `restored: the Restored control-plane server.

Usage:
  restored [flags]

Examples:
  restored                                   # one server, data in /var/lib/restored
  restored --dev                             # throwaway single server + embedded agent on the local libvirt
  restored --data-dir /srv/r2 --grpc-addr 127.0.0.1:7444 --http-addr 127.0.0.1:7081 \
           --raft-addr 127.0.0.1:7301 --join 127.0.0.1:7443 --token "$(cat /var/lib/restored/bootstrap-token)"

On first start a lone server writes an admin token to <data-dir>/bootstrap-token (mode 0600).
Every flag may also be given as RESTORED_<FLAG> in the environment or in a JSON --config file.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		cfg       server.Config
		_         = fs.String("config", "", "JSON config file whose keys are flag names")
		dev       = fs.Bool("dev", false, "run a throwaway single-node server with an embedded hypervisor agent on the local libvirt (data in a new temporary directory unless --data-dir is given)")
		logger    = flagenv.LogFlags(fs)
		showVer   = fs.Bool("version", false, "print the version and exit")
		debugAddr = fs.String("debug-addr", "", "serve Go's /debug/pprof on this address (keep it on loopback); off when empty")
		devRepo   = fs.String("dev-repository", "", "with --dev: the embedded agent's repository (default <data-dir>/repository)")
		devHost   = fs.String("dev-host-id", "dev-host", "with --dev: the embedded agent's host id")
	)
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/restored", "directory for raft's log, snapshots and the bootstrap token")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7443", "gRPC listen address (API and agents)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:7080", "HTTP listen address (REST, /healthz, /readyz, /metrics, /openapi.json, /console/)")
	fs.StringVar(&cfg.NoVNCDir, "novnc-dir", "web/node_modules/@novnc/novnc", "noVNC for the browser console (installed by make web)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7300", "raft listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "the host (name or address) other machines reach this server at; gRPC, HTTP and raft are advertised with it and their own ports (required when listening on 0.0.0.0)")
	fs.StringVar(&cfg.Join, "join", "", "gRPC address of a server of an existing cluster to join as a voter")
	fs.StringVar(&cfg.JoinToken, "token", "", "admin token used with --join")
	fs.StringVar(&cfg.CAFingerprint, "ca-fingerprint", "", "with --join: the cluster CA's fingerprint (sha256:…, logged by its first server, shown by restorectl cluster status); a cluster with another CA is refused")
	fs.StringVar(&cfg.TLSCA, "tls-ca", "", "the operator's cluster CA certificate (PEM); default: <data-dir>/tls, made at first start")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "with --tls-ca: this server's certificate (PEM), whose names are its addresses")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "with --tls-ca: this server's private key (PEM)")
	fs.StringVar(&cfg.TLSCAKey, "tls-ca-key", "", "with --tls-ca: the CA's private key, so this server can issue joining servers' and agents' certificates")
	fs.StringVar(&cfg.NodeID, "node-id", "", "raft server id (default: <hostname>-<raft port>, kept in <data-dir>/node-id)")
	fs.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", 10*time.Second, "a host whose agent is silent this long becomes DOWN")
	fs.Int64Var(&cfg.RaftMinFreeMiB, "raft-min-free-mib", raftnode.DefaultMinFreeMiB, "free space (MiB) the raft directory's filesystem keeps in reserve: below it writes are refused with RESOURCE_EXHAUSTED until space is freed (at least a log segment + 16; negative: no reserve)")
	fs.DurationVar(&cfg.SchedulerInterval, "scheduler-interval", time.Second, "longest time between scheduler passes")
	lim := server.DefaultLimits
	fs.Float64Var(&cfg.Limits.TokenRate, "token-rate", lim.TokenRate, "requests per second one bearer token may make on this server (negative: no limit)")
	fs.IntVar(&cfg.Limits.TokenBurst, "token-burst", lim.TokenBurst, "requests one token may make at once above --token-rate")
	fs.Float64Var(&cfg.Limits.AuthFailureRate, "auth-failure-rate", lim.AuthFailureRate, "failed authentications per second one client address may make before it is refused outright (negative: no limit)")
	fs.IntVar(&cfg.Limits.AuthFailureBurst, "auth-failure-burst", lim.AuthFailureBurst, "failed authentications one client address may make at once")
	fs.DurationVar(&cfg.Limits.HTTPReadHeaderTimeout, "http-read-header-timeout", lim.HTTPReadHeaderTimeout, "how long an HTTPS client may take to send its request headers")
	fs.DurationVar(&cfg.Limits.HTTPReadTimeout, "http-read-timeout", lim.HTTPReadTimeout, "how long an HTTPS client may take to send its whole request (streams exempt)")
	fs.DurationVar(&cfg.Limits.HTTPWriteTimeout, "http-write-timeout", lim.HTTPWriteTimeout, "how long an HTTPS response may take (streams exempt)")
	fs.DurationVar(&cfg.Limits.HTTPIdleTimeout, "http-idle-timeout", lim.HTTPIdleTimeout, "how long an idle HTTPS keep-alive connection is kept")
	fs.Func("grpc-max-streams", fmt.Sprintf("streams one gRPC connection may have open at once (default %d)", lim.GRPCMaxStreams), func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("give a positive number, not %q", v)
		}
		cfg.Limits.GRPCMaxStreams = uint32(n)
		return nil
	})
	fs.DurationVar(&cfg.Limits.GRPCConnectionTimeout, "grpc-connection-timeout", lim.GRPCConnectionTimeout, "how long a new gRPC connection has to finish its TLS handshake")
	fs.DurationVar(&cfg.TokenUseInterval, "token-use-interval", time.Minute, "how often tokens' last-used times are written (one raft entry per interval)")
	keep := scheduler.DefaultRetention
	fs.DurationVar(&cfg.Retention.Restores, "restore-retention", keep.Restores, "ended restores (nothing left on a host) that last changed longer ago are removed; their verifications stay (negative: keep forever)")
	fs.DurationVar(&cfg.Retention.Snapshots, "snapshot-retention", keep.Snapshots, "released or failed snapshots released longer ago are removed, except a guest's base (negative: keep forever)")
	fs.DurationVar(&cfg.Retention.IdempotencyKeys, "idempotency-retention", keep.IdempotencyKeys, "how long a request_id answers with its first result (negative: forever)")
	fs.DurationVar(&cfg.Retention.RevokedTokens, "revoked-token-retention", keep.RevokedTokens, "revoked and expired tokens are removed this long after they stopped working (negative: keep forever)")
	fs.DurationVar(&cfg.Retention.Verifications, "verification-retention", keep.Verifications, "verifications that ended longer ago are removed (negative: keep forever)")
	fs.DurationVar(&cfg.Retention.Audit, "audit-retention", keep.Audit, "audit events (writes and refusals) older than this are removed (negative: keep forever)")
	if err := flagenv.Parse(fs, args, "RESTORED", "config"); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *showVer {
		fmt.Println(version.Version)
		return nil
	}
	var err error
	if cfg.Logger, err = logger(); err != nil {
		return err
	}
	if *dev {
		if !flagGiven(fs, "data-dir") && os.Getenv("RESTORED_DATA_DIR") == "" {
			dir, err := os.MkdirTemp("", "restored-dev-")
			if err != nil {
				return err
			}
			cfg.DataDir = dir
			defer os.RemoveAll(dir) // a throwaway server leaves nothing behind
		}
		cfg.Join = ""
		cfg.Logger.Info("dev mode: one server with an embedded hypervisor agent on the local libvirt", "data_dir", cfg.DataDir)
	}
	if os.Getenv("GOGC") == "" {
		// The state store is many small immutable objects; collecting less
		// often buys raft throughput for memory this server has to spare.
		debug.SetGCPercent(400)
	}
	s, err := server.Start(cfg)
	if err != nil {
		return err
	}
	defer s.Stop()
	if *dev {
		stopAgent, err := startDevAgent(s, cfg, *devRepo, *devHost)
		if err != nil {
			return err
		}
		defer stopAgent()
	}
	if *debugAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers.
			if err := http.ListenAndServe(*debugAddr, nil); err != nil {
				cfg.Logger.Error("debug server", "addr", *debugAddr, "err", err)
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	got := <-sig
	cfg.Logger.Info("shutting down", "signal", got.String())
	return nil
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// startDevAgent runs a hypervisor agent inside this process, on the local
// libvirt; it enrolls with a join token minted for it, as any agent does.
func startDevAgent(s *server.Server, cfg server.Config, repo, hostID string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		return nil, fmt.Errorf("dev mode: no leadership: %w", err)
	}
	joinToken, err := s.MintJoinToken(hostID, 10*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("dev mode: agent join token: %w", err)
	}
	if repo == "" {
		repo = filepath.Join(cfg.DataDir, "repository")
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return nil, err
	}
	// QEMU (user libvirt-qemu) must traverse the data dir to reach overlays.
	if err := os.Chmod(cfg.DataDir, 0o711); err != nil {
		return nil, err
	}
	a, err := agent.New(agent.Config{
		Servers: []string{s.GRPCAddr()}, HostID: hostID, JoinToken: joinToken, CACert: s.CACert(), Repository: repo,
		WorkDir: filepath.Join(cfg.DataDir, "agent"), ReserveMemoryMiB: 0, RescanInterval: 5 * time.Second,
		NBDAddr: "127.0.0.1:0", // a free port: the snapshot's answer names it
		Log:     cfg.Logger.With("component", "agent"),
	})
	if err != nil {
		return nil, fmt.Errorf("dev mode: agent: %w", err)
	}
	actx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(actx)
	}()
	cfg.Logger.Info("embedded agent started", "host_id", hostID, "repository", repo)
	return func() { stop(); <-done }, nil
}
