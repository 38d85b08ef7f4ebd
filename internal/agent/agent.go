package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentid"
	"github.com/restored/restored/internal/agentmetrics"
	"github.com/restored/restored/internal/confine"
	"github.com/restored/restored/internal/fileread"
	"github.com/restored/restored/internal/hyperv"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/vmspec"
	"github.com/restored/restored/internal/vmware"
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
	// Hypervisor is what the host is: KVM (the local libvirtd, the
	// default), VMware (a vCenter cluster, VMware) or Hyper-V (the Windows
	// host the agent runs on, HyperV).
	Hypervisor kinds.Hypervisor
	// VMware is the vCenter cluster of a VMware host.
	VMware vmware.Config
	// HyperV is the Hyper-V host the agent runs on (Windows).
	HyperV        hyperv.Config
	LibvirtSocket string
	Accelerator   string // auto, kvm or tcg
	// NBDAddr is where the NBD gate listens for backup jobs (TLS; default
	// DefaultNBDAddr); AdvertiseAddr is the host they dial it at (required
	// when NBDAddr binds every interface).
	NBDAddr, AdvertiseAddr string
	// ISCSIAddr is the host iSCSI exports' targets listen on (each on a
	// port of its own; default 127.0.0.1); initiators dial AdvertiseAddr
	// when set.
	ISCSIAddr string
	// PromoteBandwidthMiB bounds each disk's copy of a promotion, MiB/s
	// (0: unbounded).
	PromoteBandwidthMiB int64
	// Bridges are the host bridges BRIDGED restores may use, and by whom.
	Bridges []Bridge
	// MetricsAddr is where the agent serves Prometheus metrics at /metrics
	// (plain HTTP; "" serves none).
	MetricsAddr string
	// DomainPrefix starts the names of this host's restore domains
	// (default "restored-"); agents sharing one libvirtd each take their own.
	DomainPrefix     string
	Emulator         string
	ReserveVCPUs     int32
	ReserveMemoryMiB int64
	// ReserveDiskMiB is kept back from the room the work dir offers
	// overlays.
	ReserveDiskMiB int64
	BootTimeout    time.Duration
	// ScreenSettle is how long the screen must stay put for the screen
	// boot signal.
	ScreenSettle time.Duration
	// EvidenceRetention is how long a failed boot's evidence is kept.
	EvidenceRetention time.Duration
	RescanInterval    time.Duration
	// PreferredEvery is how often an agent that failed over asks whether
	// the server it prefers serves again (default 30 s, with jitter).
	PreferredEvery time.Duration
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
	if c.NBDAddr == "" {
		c.NBDAddr = DefaultNBDAddr
	}
	if c.PreferredEvery <= 0 {
		c.PreferredEvery = 30 * time.Second
	}
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = 10 * time.Second
	}
	if c.Marker == "" {
		c.Marker = `login:`
	}
	if len(c.BootSignals) == 0 {
		c.BootSignals = []string{signalSerial, signalGuestAgent, signalScreen, signalHypervisor}
	}
	if c.Accelerator == "" {
		c.Accelerator = "auto"
	}
	if c.Hypervisor == 0 {
		c.Hypervisor = kinds.KVM
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

var domainPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// Agent runs one host. Its parts each own their own state, with no lock
// shared between them: restores (the host's restore VMs and the boots in
// flight), verifications (a VERIFY run's checks), snapshots (what this run
// serves for backup jobs) and the tunnel; the catalog of recovery points
// and the control plane's client are swapped atomically.
type Agent struct {
	cfg Config
	log *slog.Logger
	// drv is the local libvirtd (KVM hosts only).
	drv *kvm.Driver
	// metrics is nil without --metrics-addr.
	metrics *agentmetrics.Metrics
	repo    *storage.Repository
	marker  *regexp.Regexp
	rescan  chan struct{}
	// qemuGroup is the gid every restore's QEMU runs with (kvm).
	qemuGroup uint32

	catalog catalog
	ctl     *control
	servers *servers
	// id is the agent's certificate (kept in <work-dir>/tls), set by Run.
	id *agentid.Identity
}

// New checks the configuration and prepares the agent.
func New(cfg Config) (*Agent, error) {
	cfg.defaults()
	if cfg.HostID == "" || len(cfg.Servers) == 0 || cfg.WorkDir == "" {
		return nil, fmt.Errorf("--host-id, --server and --work-dir are required")
	}
	switch cfg.Hypervisor {
	case kinds.KVM:
		if cfg.Repository == "" {
			return nil, fmt.Errorf("--repository is required: a KVM host boots the recovery points it holds")
		}
	case kinds.VMware:
		if cfg.VMware.URL == "" || cfg.VMware.Credentials == "" {
			return nil, fmt.Errorf("--hypervisor vmware needs --vcenter (https://VCENTER/sdk) and --credentials (a JSON file with username and password)")
		}
		if _, _, err := vmware.ReadCredentials(cfg.VMware.Credentials); err != nil {
			return nil, err
		}
	case kinds.HyperV:
		// The agent runs on the Hyper-V host; Open checks PowerShell answers.
	default:
		return nil, fmt.Errorf("--hypervisor %s: this agent drives kvm, vmware or hyperv", cfg.Hypervisor)
	}
	if cfg.CACert != "" {
		if _, err := pki.LoadCA(cfg.CACert, ""); err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
	}
	if cfg.PromoteBandwidthMiB < 0 {
		return nil, fmt.Errorf("--promote-bandwidth-mib must be 0 (unbounded) or more, not %d", cfg.PromoteBandwidthMiB)
	}
	if ip := net.ParseIP(cfg.ISCSIAddr); (cfg.ISCSIAddr == "0.0.0.0" || (ip != nil && ip.IsUnspecified())) && cfg.AdvertiseAddr == "" {
		return nil, fmt.Errorf("--iscsi-addr %s listens on every interface, which is no address an initiator can dial: give --advertise-addr", cfg.ISCSIAddr)
	}
	if err := checkNBDAddr(cfg.NBDAddr, cfg.AdvertiseAddr); err != nil {
		return nil, err
	}
	if cfg.DomainPrefix != "" && !domainPrefixPattern.MatchString(cfg.DomainPrefix) {
		return nil, fmt.Errorf("--domain-prefix %q: use 1 to 32 letters, digits, '.', '_' or '-'", cfg.DomainPrefix)
	}
	marker, err := regexp.Compile(cfg.Marker)
	if err != nil {
		return nil, fmt.Errorf("--boot-marker: %w", err)
	}
	for _, sig := range cfg.BootSignals {
		if sig != signalSerial && sig != signalGuestAgent && sig != signalScreen && sig != signalHypervisor {
			return nil, fmt.Errorf("--boot-signals: unknown signal %q (want serial, guest-agent, screen or hypervisor)", sig)
		}
	}
	for _, dir := range []string{"restores", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(cfg.WorkDir, dir), 0o755); err != nil {
			return nil, fmt.Errorf("work dir %s: %w", cfg.WorkDir, err)
		}
	}
	a := &Agent{
		cfg: cfg, log: cfg.Log, marker: marker,
		rescan:  make(chan struct{}, 1),
		ctl:     &control{log: cfg.Log},
		servers: newServers(cfg.HostID, cfg.WorkDir, cfg.Servers, cfg.Log),
	}
	if cfg.Repository != "" {
		a.repo = &storage.Repository{Root: cfg.Repository}
	}
	if cfg.MetricsAddr != "" {
		a.metrics = agentmetrics.New(cfg.WorkDir)
	}
	if cfg.Hypervisor != kinds.KVM {
		return a, nil
	}
	// QEMU runs as libvirt-qemu and must reach overlays in the work dir.
	if err := os.Chmod(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir %s: %w", cfg.WorkDir, err)
	}
	// Restores' QEMUs (group kvm) pass toward the repository even through
	// directories others may not; they read only what they are granted.
	gid, err := confine.KVMGroup()
	if err != nil {
		return nil, err
	}
	changed, err := confine.ReachRoot(cfg.Repository, gid)
	if err != nil {
		return nil, fmt.Errorf("repository %s: let QEMU reach it: %w", cfg.Repository, err)
	}
	more, err := confine.ReachLibvirt(gid)
	if err != nil {
		return nil, fmt.Errorf("let QEMU reach libvirt's per-domain directories: %w", err)
	}
	if changed = append(changed, more...); len(changed) > 0 {
		cfg.Log.Info("QEMU (group kvm) may pass these directories (ACL, traverse only)", "dirs", changed)
	}
	a.qemuGroup = gid
	a.drv = kvm.NewLocal(cfg.LibvirtSocket, cfg.Log)
	if a.metrics != nil {
		a.drv.OnCall(a.metrics.ObserveCall)
	}
	return a, nil
}

// host is a hypervisor as the agent drives it: the whole driver boundary.
type host interface {
	hypervisor.Driver
	hypervisor.Restorer
	hypervisor.Observer
	hypervisor.Snapshotter
}

// parts are the agent's parts for one run, on one hypervisor.
type parts struct {
	hv host
	// accelerator is what runs the host's VMs (kvm, tcg, vsphere), note
	// why it was chosen.
	accelerator, note string
	restores          *restores
	snapshots         *snapshots
	tunnel            *tunnel
}

// openHost reaches the hypervisor: the local libvirtd (probing the
// accelerator) or the vCenter cluster.
func (a *Agent) openHost(ctx context.Context) (host, string, string, error) {
	if a.cfg.Hypervisor == kinds.HyperV {
		hc := a.cfg.HyperV
		hc.HostID, hc.WorkDir, hc.Log = a.cfg.HostID, a.cfg.WorkDir, a.log
		h, err := hyperv.Open(ctx, hc)
		if err != nil {
			return nil, "", "", err
		}
		return h, h.Accelerator(), "Hyper-V runs the VMs", nil
	}
	if a.cfg.Hypervisor == kinds.VMware {
		vc := a.cfg.VMware
		vc.HostID, vc.WorkDir, vc.Log = a.cfg.HostID, a.cfg.WorkDir, a.log
		h, err := vmware.Open(ctx, vc)
		if err != nil {
			return nil, "", "", err
		}
		return h, h.Accelerator(), "the vCenter cluster runs the VMs", nil
	}
	accel, note := Accelerator(ctx, a.cfg.Emulator, a.cfg.WorkDir, a.cfg.Accelerator)
	a.log.Info("accelerator chosen", "accelerator", accel, "why", note)
	return kvm.NewHost(a.drv, kvm.HostConfig{HostID: a.cfg.HostID, WorkDir: a.cfg.WorkDir, Repository: a.cfg.Repository, QEMUGroup: a.qemuGroup, Log: a.log,
		ISCSIListen: a.cfg.ISCSIAddr, ISCSIAdvertise: a.cfg.AdvertiseAddr, PromoteBandwidth: a.cfg.PromoteBandwidthMiB << 20, Facts: vmspec.HostFacts{
			Accelerator: accel, Emulator: a.cfg.Emulator,
			OVMFCode: "/usr/share/OVMF/OVMF_CODE_4M.fd", OVMFVars: "/usr/share/OVMF/OVMF_VARS_4M.fd", DomainPrefix: a.cfg.DomainPrefix,
		}}), accel, note, nil
}

// assemble builds the parts on the host.
func (a *Agent) assemble(hv host, accel, note string) *parts {
	caps := hv.Capabilities()
	ev := &evidence{root: filepath.Join(a.cfg.WorkDir, "evidence"), retention: a.cfg.EvidenceRetention, hostID: a.cfg.HostID, obs: hv, log: a.log}
	snaps := newSnapshots(a.cfg.HostID, hv, caps, a.ctl, a.log)
	limits := defaultTimeouts
	if hv.Kind() != kinds.KVM {
		limits.prepare = uploadLimit // whole disks are converted (Hyper-V) or uploaded (VMware)
	}
	return &parts{
		hv: hv, accelerator: accel, note: note, snapshots: snaps,
		restores: &restores{
			hostID: a.cfg.HostID, hv: hv, caps: caps, catalog: &a.catalog, rep: a.ctl, ev: ev, limits: limits, log: a.log, work: newClaims(),
			bridges: hostBridges(a.cfg.Bridges), conversions: make(chan struct{}, maxConversions), metrics: a.metrics,
			boot:   &bootWatcher{obs: hv, caps: caps, timeout: a.cfg.BootTimeout, settle: a.cfg.ScreenSettle, marker: a.marker, signals: a.cfg.BootSignals, log: a.log},
			verify: &verifications{obs: hv, caps: caps, ev: ev, settle: a.cfg.ScreenSettle, bootTimeout: a.cfg.BootTimeout, log: a.log},
		},
		tunnel: &tunnel{hostID: a.cfg.HostID, ctl: a.ctl, obs: hv, caps: caps, snapshots: snaps, ev: ev, images: imagerOf(hv), exporter: exporterOf(hv), log: a.log,
			files: a.files(hv, caps)},
	}
}

// files is file-level restore on this host: the driver serves the disks
// read-only, and the agent's own binary, confined, reads them.
func (a *Agent) files(hv host, caps hypervisor.Set) *files {
	f := &files{hostID: a.cfg.HostID, catalog: &a.catalog, log: a.log}
	ds, ok := hv.(hypervisor.DiskServer)
	if !ok || !caps.Has(hypervisor.Files) {
		return f
	}
	exe, err := os.Executable()
	if err != nil {
		a.log.Warn("file-level restore is off: the agent cannot find its own binary to run the file reader", "err", err)
		return f
	}
	root, err := fileread.EmptyRoot(filepath.Join(a.cfg.WorkDir, "file-reader-root"))
	if err != nil {
		a.log.Warn("file-level restore is off: no empty root for the file reader", "err", err)
		return f
	}
	f.srv, f.runner = ds, fileread.Runner{Exe: exe, Root: root}
	return f
}

// exporterOf is the driver's exports, when it serves any.
func exporterOf(hv host) hypervisor.Exporter {
	if ex, ok := hv.(hypervisor.Exporter); ok {
		return ex
	}
	return nil
}

// imagerOf is the driver's image files, when it makes any.
func imagerOf(hv host) hypervisor.Imager {
	if im, ok := hv.(hypervisor.Imager); ok {
		return im
	}
	return nil
}

// Run works until ctx ends, reconnecting to the servers and libvirtd when
// they go away: it fails over to the next server at once when the one it
// uses dies or stops answering, and goes back to the one it prefers when
// that one serves again.
func (a *Agent) Run(ctx context.Context) error {
	id, err := a.identity(ctx)
	if err != nil {
		return err
	}
	a.id = id
	octx, ocancel := context.WithTimeout(ctx, time.Minute)
	hv, accel, note, err := a.openHost(octx)
	ocancel()
	if err != nil {
		if a.drv != nil {
			a.drv.Close()
		}
		return err
	}
	defer hv.Close()
	p := a.assemble(hv, accel, note)
	defer a.drain(p)
	defer p.tunnel.files.close()
	if a.metrics != nil {
		stop, err := a.serveMetrics()
		if err != nil {
			return err
		}
		defer stop()
	}
	if w, ok := hv.(hypervisor.VMWatcher); ok {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		go p.restores.watchVMs(wctx, w)
	}
	if g, ok := hv.(hypervisor.OverlayGuard); ok {
		gctx, gcancel := context.WithCancel(ctx)
		defer gcancel()
		go p.restores.watchOverlays(gctx, g)
	}
	ex, err := a.openExports(p.snapshots, p.restores)
	if err != nil {
		return err
	}
	defer ex.close()
	p.snapshots.public, p.snapshots.gateCA = ex.uri, ex.caPEM
	p.restores.public, p.restores.gateCA = ex.uri, ex.caPEM
	// The backup jobs an earlier run served have no reader any more.
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	if n, err := p.hv.EndStale(ectx); err != nil {
		a.log.Warn("ending backup jobs left by an earlier run failed", "err", err)
	} else if n > 0 {
		a.log.Info("ended backup jobs left by an earlier run", "count", n)
	}
	ecancel()
	next, failed := 0, 0
	for ctx.Err() == nil {
		order := a.servers.order()
		i := next % len(order)
		server := order[i]
		registered, err := a.session(ctx, p, server)
		if ctx.Err() != nil {
			return nil
		}
		pause := 100 * time.Millisecond
		switch {
		case errors.Is(err, errPreferredBack):
			a.log.Info("moving to the server this host prefers", "from", server, "to", a.servers.order()[0])
			next, failed = 0, 0
			continue
		case errors.Is(err, errNotRegistered):
			a.log.Warn("the server does not know this host; registering again", "server", server)
			failed = 0
		case registered:
			// It served until now: the next server takes over at once.
			a.log.Warn("lost the server; failing over", "server", server, "err", err)
			next, failed = i+1, 0
		default:
			a.log.Warn("cannot use the server; trying the next", "server", server, "err", err)
			next, failed = i+1, failed+1
			if failed >= len(order) { // a whole round failed: back off
				pause = time.Duration(min(failed/len(order), 5)) * time.Second
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return nil
}

// Rescan asks for the repository to be scanned and reported now.
func (a *Agent) Rescan() {
	select {
	case a.rescan <- struct{}{}:
	default: // one is already pending
	}
}

// rescans reports the repository and the host's domains every
// RescanInterval, and the repository when asked.
func (a *Agent) rescans(ctx context.Context, client restorev1.AgentServiceClient, hv hypervisor.Snapshotter) {
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
		if err := a.reportInventory(ctx, client, hv); err != nil && ctx.Err() == nil {
			a.log.Warn("inventory report failed", "err", err)
		}
	}
}

func (a *Agent) scanAndReport(ctx context.Context, client restorev1.AgentServiceClient) error {
	if a.repo == nil { // a host without a repository holds no recovery points
		return reportInParts(ctx, client, a.cfg.HostID, nil)
	}
	// Whatever umask wrote them, recovery points are readable by no one
	// but root and the restores granted them (confine).
	if err := confine.Tighten(a.cfg.Repository); err != nil {
		a.log.Warn("repository permissions", "err", err)
	}
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
	return reportInParts(ctx, client, a.cfg.HostID, report)
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

// serveMetrics serves /metrics on MetricsAddr until stop.
func (a *Agent) serveMetrics() (stop func(), err error) {
	l, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", a.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	a.log.Info("serving metrics", "addr", l.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// drainTimeout is how long a stopping agent waits for the work in flight
// (teardowns above all) to end.
const drainTimeout = 30 * time.Second

// drain lets the teardowns in flight finish before the agent stops (their
// contexts outlive the agent's), and says which work it left: a boot
// stopped midway is adopted at the next start, a teardown finished then.
func (a *Agent) drain(p *parts) {
	left := p.restores.work.drain(drainTimeout)
	if len(left) == 0 {
		a.log.Info("stopped: no restore work left in flight")
		return
	}
	a.log.Warn("stopping with restore work in flight: the next start finishes it (teardowns) or adopts it (boots)", "restores", left, "waited", drainTimeout)
}
