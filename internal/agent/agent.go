package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/version"
	"github.com/restored/restored/internal/vmspec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Config configures an agent.
type Config struct {
	Servers          []string
	HostID           string
	Token            string
	Repository       string
	WorkDir          string
	LibvirtSocket    string
	Accelerator      string // auto, kvm or tcg
	Emulator         string
	ReserveVCPUs     int32
	ReserveMemoryMiB int64
	BootTimeout      time.Duration
	// ScreenSettle is how long the screen must stay put for the screen
	// boot signal.
	ScreenSettle time.Duration
	// EvidenceRetention is how long a failed boot's evidence is kept.
	EvidenceRetention time.Duration
	RescanInterval    time.Duration
	// Marker is the serial console regex that proves a boot (default: a login prompt).
	Marker string
	// BootSignals are the signals that may prove a boot: any of "serial",
	// "guest-agent", "screen" (default: all three).
	BootSignals []string
	Log         *slog.Logger
}

func (c *Config) defaults() {
	if c.LibvirtSocket == "" {
		c.LibvirtSocket = kvm.DefaultSocket
	}
	if c.Emulator == "" {
		c.Emulator = "/usr/bin/qemu-system-x86_64"
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 3 * time.Minute
	}
	if c.ScreenSettle <= 0 {
		c.ScreenSettle = 20 * time.Second
	}
	if c.EvidenceRetention <= 0 {
		c.EvidenceRetention = 7 * 24 * time.Hour
	}
	if c.RescanInterval == 0 {
		c.RescanInterval = time.Minute
	}
	if c.Marker == "" {
		c.Marker = `login:`
	}
	if len(c.BootSignals) == 0 {
		c.BootSignals = []string{signalSerial, signalGuestAgent, signalScreen}
	}
	if c.Accelerator == "" {
		c.Accelerator = "auto"
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Agent runs one host.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	drv    *kvm.Driver
	repo   *storage.Repository
	marker *regexp.Regexp
	facts  vmspec.HostFacts
	note   string

	rescan chan struct{}

	mu       sync.Mutex
	rps      map[string]storage.RecoveryPoint
	inflight map[string]context.CancelFunc
	client   restorev1.AgentServiceClient
	// snaps are the READY snapshots this run serves; snapsTaken the ones
	// it took (or is taking), never taken twice.
	snaps      map[string]*kvm.Backup
	snapsTaken map[string]bool
}

// New checks the configuration and prepares the agent.
func New(cfg Config) (*Agent, error) {
	cfg.defaults()
	if cfg.HostID == "" || len(cfg.Servers) == 0 || cfg.Repository == "" || cfg.WorkDir == "" {
		return nil, fmt.Errorf("--host-id, --server, --repository and --work-dir are required")
	}
	marker, err := regexp.Compile(cfg.Marker)
	if err != nil {
		return nil, fmt.Errorf("--boot-marker: %w", err)
	}
	for _, sig := range cfg.BootSignals {
		if sig != signalSerial && sig != signalGuestAgent && sig != signalScreen {
			return nil, fmt.Errorf("--boot-signals: unknown signal %q (want serial, guest-agent or screen)", sig)
		}
	}
	for _, dir := range []string{"restores", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(cfg.WorkDir, dir), 0o755); err != nil {
			return nil, fmt.Errorf("work dir %s: %w", cfg.WorkDir, err)
		}
	}
	// QEMU runs as libvirt-qemu and must reach overlays in the work dir.
	if err := os.Chmod(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir %s: %w", cfg.WorkDir, err)
	}
	return &Agent{
		cfg: cfg, log: cfg.Log, marker: marker,
		drv:      kvm.NewLocal(cfg.LibvirtSocket, cfg.Log),
		repo:     &storage.Repository{Root: cfg.Repository},
		rps:      map[string]storage.RecoveryPoint{},
		rescan:   make(chan struct{}, 1),
		inflight: map[string]context.CancelFunc{},
		snaps:    map[string]*kvm.Backup{}, snapsTaken: map[string]bool{},
	}, nil
}

func (a *Agent) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.cfg.Token)
}

// Run works until ctx ends, reconnecting to the servers and libvirtd when
// they go away.
func (a *Agent) Run(ctx context.Context) error {
	defer a.drv.Close()
	accel, note := Accelerator(ctx, a.cfg.Emulator, a.cfg.WorkDir, a.cfg.Accelerator)
	a.facts = vmspec.HostFacts{Accelerator: accel, Emulator: a.cfg.Emulator,
		OVMFCode: "/usr/share/OVMF/OVMF_CODE_4M.fd", OVMFVars: "/usr/share/OVMF/OVMF_VARS_4M.fd"}
	a.note = note
	a.log.Info("accelerator chosen", "accelerator", accel, "why", note)
	// The backup jobs an earlier run served have no reader any more.
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	if n, err := a.drv.EndStaleBackups(ectx, a.cfg.HostID); err != nil {
		a.log.Warn("ending backup jobs left by an earlier run failed", "err", err)
	} else if n > 0 {
		a.log.Info("ended backup jobs left by an earlier run", "count", n)
	}
	ecancel()
	for attempt := 0; ctx.Err() == nil; attempt++ {
		server := a.cfg.Servers[attempt%len(a.cfg.Servers)]
		err := a.session(ctx, server)
		if ctx.Err() != nil {
			return nil
		}
		a.log.Warn("lost the control plane; reconnecting", "server", server, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// session is one connection to a server: register, heartbeat, report,
// and reconcile every assignment message until the stream breaks.
func (a *Agent) session(ctx context.Context, server string) error {
	conn, err := grpc.NewClient(server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := restorev1.NewAgentServiceClient(conn)
	a.mu.Lock()
	a.client = client
	a.mu.Unlock()
	nctx, ncancel := context.WithTimeout(ctx, 30*time.Second)
	node, err := a.drv.Node(nctx)
	ncancel()
	if err != nil {
		return fmt.Errorf("libvirt node info: %w", err)
	}
	capacity := &restorev1.Capacity{Vcpus: node.CPUs - a.cfg.ReserveVCPUs, MemoryMib: node.MemoryMiB - a.cfg.ReserveMemoryMiB}
	reg, err := client.Register(a.ctx(ctx), &restorev1.RegisterRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, AgentVersion: version.Version, Hypervisors: []string{kinds.KVM.String()},
		Accelerator: a.facts.Accelerator, AcceleratorNote: a.note, Capacity: capacity,
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	a.log.Info("registered", "server", server, "host", a.cfg.HostID, "capacity_vcpus", capacity.Vcpus, "capacity_mib", capacity.MemoryMib)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.heartbeats(sctx, client, time.Duration(reg.HeartbeatIntervalMs)*time.Millisecond)
	// Know the repository before acting on any assignment.
	if err := a.scanAndReport(sctx, client); err != nil {
		a.log.Warn("recovery point report failed", "err", err)
	}
	go a.rescans(sctx, client)
	go a.tunnels(sctx, client)
	stream, err := client.WatchAssignments(a.ctx(sctx), &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
	if err != nil {
		return fmt.Errorf("watch assignments: %w", err)
	}
	// Reconcile on every new desired state, and again every ReconcileEvery
	// with the last one: a teardown that failed is retried, not forgotten.
	msgs := make(chan *restorev1.WatchAssignmentsResponse)
	errs := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				errs <- err
				return
			}
			select {
			case msgs <- msg:
			case <-sctx.Done():
				return
			}
		}
	}()
	var last *restorev1.WatchAssignmentsResponse
	tick := time.NewTicker(ReconcileEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-errs:
			return fmt.Errorf("assignment stream: %w", err)
		case last = <-msgs:
		case <-tick.C:
			if last == nil {
				continue
			}
		}
		a.reconcile(sctx, last.Assignments)
		a.reconcileSnapshots(sctx, last.Snapshots)
	}
}

// ReconcileEvery is how often the agent re-applies the last desired state.
var ReconcileEvery = 10 * time.Second

func (a *Agent) heartbeats(ctx context.Context, client restorev1.AgentServiceClient, every time.Duration) {
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, every)
		_, err := client.Heartbeat(a.ctx(hctx), &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Rescan asks for the repository to be scanned and reported now.
func (a *Agent) Rescan() {
	select {
	case a.rescan <- struct{}{}:
	default: // one is already pending
	}
}

// rescans reports the repository every RescanInterval, and when asked.
func (a *Agent) rescans(ctx context.Context, client restorev1.AgentServiceClient) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.RescanInterval):
		case <-a.rescan:
			a.log.Info("rescanning the repository as asked")
		}
		if err := a.scanAndReport(ctx, client); err != nil && ctx.Err() == nil {
			a.log.Warn("recovery point report failed", "err", err)
		}
	}
}

func (a *Agent) scanAndReport(ctx context.Context, client restorev1.AgentServiceClient) error {
	found, skipped, err := a.repo.Scan()
	if err != nil {
		return err
	}
	for _, s := range skipped {
		a.log.Warn("repository entry skipped", "dir", s.Dir, "reason", s.Reason)
	}
	rps := map[string]storage.RecoveryPoint{}
	var report []*restorev1.RecoveryPoint
	for _, rp := range found {
		rps[rp.ID] = rp
		report = append(report, toProto(rp))
		if !rp.Valid {
			a.log.Warn("invalid recovery point", "id", rp.ID, "reason", rp.Reason)
		}
	}
	a.mu.Lock()
	a.rps = rps
	a.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = client.ReportRecoveryPoints(a.ctx(rctx), &restorev1.ReportRecoveryPointsRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, RecoveryPoints: report,
	})
	return err
}
