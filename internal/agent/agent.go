package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentid"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/version"
	"github.com/restored/restored/internal/vmspec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Config configures an agent.
type Config struct {
	Servers []string
	HostID  string
	// JoinToken enrolls the agent the first time (restorectl host
	// join-token HOST_ID); its certificate is then kept in <work-dir>/tls.
	JoinToken string
	// CAFingerprint pins the cluster CA at enrollment; CACert, instead, is
	// the CA's certificate file.
	CAFingerprint, CACert string
	Repository            string
	WorkDir               string
	LibvirtSocket         string
	Accelerator           string // auto, kvm or tcg
	Emulator              string
	ReserveVCPUs          int32
	ReserveMemoryMiB      int64
	BootTimeout           time.Duration
	// ScreenSettle is how long the screen must stay put for the screen
	// boot signal.
	ScreenSettle time.Duration
	// EvidenceRetention is how long a failed boot's evidence is kept.
	EvidenceRetention time.Duration
	RescanInterval    time.Duration
	// ReconcileEvery is how often the last desired state is applied again
	// (a failed teardown is retried then; default 10 s).
	ReconcileEvery time.Duration
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
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = 10 * time.Second
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

// Agent runs one host. Its parts each own their own state, with no lock
// shared between them: restores (the host's restore VMs and the boots in
// flight), verifications (a VERIFY run's checks), snapshots (what this run
// serves for backup jobs) and the tunnel; the catalog of recovery points
// and the control plane's client are swapped atomically.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	drv    *kvm.Driver
	repo   *storage.Repository
	marker *regexp.Regexp
	rescan chan struct{}

	catalog catalog
	ctl     *control
	// id is the agent's certificate (kept in <work-dir>/tls), set by Run.
	id *agentid.Identity
}

// New checks the configuration and prepares the agent.
func New(cfg Config) (*Agent, error) {
	cfg.defaults()
	if cfg.HostID == "" || len(cfg.Servers) == 0 || cfg.Repository == "" || cfg.WorkDir == "" {
		return nil, fmt.Errorf("--host-id, --server, --repository and --work-dir are required")
	}
	if cfg.CACert != "" {
		if _, err := pki.LoadCA(cfg.CACert, ""); err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
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
		drv:    kvm.NewLocal(cfg.LibvirtSocket, cfg.Log),
		repo:   &storage.Repository{Root: cfg.Repository},
		rescan: make(chan struct{}, 1),
		ctl:    &control{log: cfg.Log},
	}, nil
}

// parts are the agent's parts for one run, on one hypervisor.
type parts struct {
	hv        *kvm.Host
	note      string
	restores  *restores
	snapshots *snapshots
	tunnel    *tunnel
}

// assemble probes the accelerator and builds the parts on the KVM host.
func (a *Agent) assemble(ctx context.Context) *parts {
	accel, note := Accelerator(ctx, a.cfg.Emulator, a.cfg.WorkDir, a.cfg.Accelerator)
	a.log.Info("accelerator chosen", "accelerator", accel, "why", note)
	hv := kvm.NewHost(a.drv, kvm.HostConfig{HostID: a.cfg.HostID, WorkDir: a.cfg.WorkDir, Log: a.log, Facts: vmspec.HostFacts{
		Accelerator: accel, Emulator: a.cfg.Emulator,
		OVMFCode: "/usr/share/OVMF/OVMF_CODE_4M.fd", OVMFVars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
	}})
	caps := hv.Capabilities()
	ev := &evidence{root: filepath.Join(a.cfg.WorkDir, "evidence"), retention: a.cfg.EvidenceRetention, hostID: a.cfg.HostID, obs: hv, log: a.log}
	snaps := newSnapshots(a.cfg.HostID, hv, caps, a.ctl, a.log)
	return &parts{
		hv: hv, note: note, snapshots: snaps,
		restores: &restores{
			hostID: a.cfg.HostID, hv: hv, caps: caps, catalog: &a.catalog, rep: a.ctl, ev: ev, limits: defaultTimeouts, log: a.log, work: newClaims(),
			boot:   &bootWatcher{obs: hv, caps: caps, timeout: a.cfg.BootTimeout, settle: a.cfg.ScreenSettle, marker: a.marker, signals: a.cfg.BootSignals, log: a.log},
			verify: &verifications{obs: hv, caps: caps, ev: ev, settle: a.cfg.ScreenSettle, bootTimeout: a.cfg.BootTimeout, log: a.log},
		},
		tunnel: &tunnel{hostID: a.cfg.HostID, ctl: a.ctl, obs: hv, caps: caps, snapshots: snaps, ev: ev, log: a.log},
	}
}

// Run works until ctx ends, reconnecting to the servers and libvirtd when
// they go away.
func (a *Agent) Run(ctx context.Context) error {
	defer a.drv.Close()
	id, err := a.identity(ctx)
	if err != nil {
		return err
	}
	a.id = id
	p := a.assemble(ctx)
	// The backup jobs an earlier run served have no reader any more.
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	if n, err := p.hv.EndStale(ectx); err != nil {
		a.log.Warn("ending backup jobs left by an earlier run failed", "err", err)
	} else if n > 0 {
		a.log.Info("ended backup jobs left by an earlier run", "count", n)
	}
	ecancel()
	for attempt := 0; ctx.Err() == nil; attempt++ {
		server := a.cfg.Servers[attempt%len(a.cfg.Servers)]
		err := a.session(ctx, p, server)
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
func (a *Agent) session(ctx context.Context, p *parts, server string) error {
	conn, err := grpc.NewClient(server, grpc.WithTransportCredentials(credentials.NewTLS(a.id.DialConfig(server))))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := restorev1.NewAgentServiceClient(conn)
	a.ctl.use(client)
	nctx, ncancel := context.WithTimeout(ctx, 30*time.Second)
	size, err := p.hv.Size(nctx)
	ncancel()
	if err != nil {
		return fmt.Errorf("libvirt node info: %w", err)
	}
	capacity := &restorev1.Capacity{Vcpus: size.CPUs - a.cfg.ReserveVCPUs, MemoryMib: size.MemoryMiB - a.cfg.ReserveMemoryMiB}
	reg, err := client.Register(ctx, &restorev1.RegisterRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, AgentVersion: version.Version, Hypervisors: []string{p.hv.Kind().String()},
		Accelerator: p.hv.Facts().Accelerator, AcceleratorNote: p.note, Capacity: capacity,
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	a.log.Info("registered", "server", server, "host", a.cfg.HostID, "capacity_vcpus", capacity.Vcpus, "capacity_mib", capacity.MemoryMib,
		"capabilities", p.hv.Capabilities().String())
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.heartbeats(sctx, client, time.Duration(reg.HeartbeatIntervalMs)*time.Millisecond)
	go a.renewals(sctx, client)
	// Know the repository before acting on any assignment.
	if err := a.scanAndReport(sctx, client); err != nil {
		a.log.Warn("recovery point report failed", "err", err)
	}
	go a.rescans(sctx, client)
	go p.tunnel.run(sctx, client)
	stream, err := client.WatchAssignments(sctx, &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
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
	tick := time.NewTicker(a.cfg.ReconcileEvery)
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
		p.restores.reconcile(sctx, last.Assignments)
		p.snapshots.reconcile(sctx, last.Snapshots)
	}
}

func (a *Agent) heartbeats(ctx context.Context, client restorev1.AgentServiceClient, every time.Duration) {
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, every)
		_, err := client.Heartbeat(hctx, &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
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
	report := make([]*restorev1.RecoveryPoint, 0, len(found))
	for _, rp := range found {
		report = append(report, toProto(rp))
		if !rp.Valid {
			a.log.Warn("invalid recovery point", "id", rp.ID, "reason", rp.Reason)
		}
	}
	a.catalog.replace(storage.NewIndex(found))
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = client.ReportRecoveryPoints(rctx, &restorev1.ReportRecoveryPointsRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, RecoveryPoints: report,
	})
	return err
}

// toProto is a recovery point as the control plane hears of it.
func toProto(rp storage.RecoveryPoint) *restorev1.RecoveryPoint {
	out := &restorev1.RecoveryPoint{Id: rp.ID, Tenant: rp.Tenant, Asset: rp.Asset, Valid: rp.Valid, InvalidReason: rp.Reason}
	if rp.Manifest != nil {
		out.CreateTime = timestamppb.New(rp.Manifest.CreatedAt)
		out.Firmware, out.Os = rp.Manifest.Firmware.String(), rp.Manifest.OS.String()
		for _, d := range rp.Manifest.Disks {
			out.Disks = append(out.Disks, &restorev1.Disk{Name: d.Name, Format: d.Format.String(), VirtualSize: d.VirtualSize, Backing: d.Backing})
		}
	}
	return out
}
