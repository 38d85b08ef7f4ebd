// Command hypervisor-agent is Restored's per-host agent: it registers the
// host with restored, reports the recovery points of its repository, and
// boots, verifies and tears down the restores assigned to it, through
// libvirtd; and it takes the snapshots backup jobs ask for. With
// --hypervisor vmware the host is a vCenter cluster instead, reached
// through the vSphere API.
//
// Every flag can also be set as RESTORED_AGENT_<FLAG> in the environment or
// in a JSON --config file.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/restored/restored/internal/agent"
	"github.com/restored/restored/internal/fileread"
	"github.com/restored/restored/internal/flagenv"
	"github.com/restored/restored/internal/hyperv"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == fileread.ChildArg {
		// A confined file reader the agent started (file-level restore).
		os.Exit(fileread.Main())
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hypervisor-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("hypervisor-agent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `hypervisor-agent: boots Restored's recovery points as VMs on this host.

Usage:
  hypervisor-agent --server ADDR --host-id ID --join-token TOKEN --ca-fingerprint FP --repository DIR --work-dir DIR
  hypervisor-agent --hypervisor vmware --vcenter URL --credentials FILE [--cluster NAME] --server ADDR --host-id ID ...

Examples:
  hypervisor-agent --server 127.0.0.1:7443 --host-id kvm-01 --join-token "$JOIN" --ca-fingerprint "$FP" \
                   --repository /srv/restored/repository --work-dir /var/lib/restored-agent
  hypervisor-agent --hypervisor vmware --vcenter https://vc.example.com/sdk --credentials /etc/restored/vc.json \
                   --datacenter DC1 --cluster Prod --server 127.0.0.1:7443 --host-id vc-prod --join-token "$JOIN" \
                   --ca-fingerprint "$FP" --work-dir /var/lib/restored-agent-vc-prod

A join token comes from: restorectl host join-token HOST_ID (the agent enrolls once, then keeps its certificate).
A VMware host is one vCenter cluster: run one agent per cluster, each with its own --host-id and --work-dir.
A Hyper-V host runs its own agent (built for Windows): hypervisor-agent.exe --hypervisor hyperv ... (docs/hyperv.md).
Every flag may also be given as RESTORED_AGENT_<FLAG> in the environment or in a JSON --config file.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		cfg     agent.Config
		servers = fs.String("server", "127.0.0.1:7443", "restored gRPC address(es), comma-separated: where the agent first finds the cluster; it then learns every server from the cluster (kept in <work-dir>/servers.json), balances hosts over them and fails over between them")
		showVer = fs.Bool("version", false, "print the version and exit")
		logger  = flagenv.LogFlags(fs)
		_       = fs.String("config", "", "JSON config file whose keys are flag names")
	)
	fs.StringVar(&cfg.HostID, "host-id", "", "this host's id, a lowercase DNS label (required)")
	fs.StringVar(&cfg.JoinToken, "join-token", "", "a one-time join token for this host (restorectl host join-token HOST_ID): the agent enrolls once and keeps its certificate in <work-dir>/tls")
	fs.StringVar(&cfg.CAFingerprint, "ca-fingerprint", "", "with --join-token: the cluster CA's fingerprint (sha256:…, printed with the join token); a server with another CA is refused")
	fs.StringVar(&cfg.CACert, "ca-cert", "", "with --join-token, instead of --ca-fingerprint: the cluster CA's certificate file")
	retired := fs.String("token", "", "retired: agents prove who they are with their certificate (enroll with --join-token)")
	fs.StringVar(&cfg.Repository, "repository", "", "repository of recovery points: <root>/<tenant>/<asset>/<id>/manifest.json (required for kvm)")
	fs.TextVar(&cfg.Hypervisor, "hypervisor", kinds.KVM, "what this host is: kvm (the local libvirtd), vmware (a vCenter cluster) or hyperv (the Windows host the agent runs on)")
	powershell := fs.String("powershell", "powershell.exe", "hyperv: the PowerShell executable (Windows PowerShell 5.1 with the Hyper-V module, or pwsh)")
	fs.StringVar(&cfg.HyperV.VMDir, "vm-dir", "", "hyperv: where restores' VMs and disks go (default <work-dir>\\vms)")
	fs.StringVar(&cfg.HyperV.QEMUImg, "qemu-img", "qemu-img", "hyperv: qemu-img, which converts recovery points to VHDX")
	fs.StringVar(&cfg.VMware.URL, "vcenter", "", "vmware: the vCenter's SDK URL, https://VCENTER/sdk")
	fs.StringVar(&cfg.VMware.Credentials, "credentials", "", `vmware: a JSON file {"username": …, "password": …} to log in with (keep it mode 0600)`)
	fs.StringVar(&cfg.VMware.CACert, "vcenter-ca", "", "vmware: PEM file of the CA(s) the vCenter's certificate chains to (default: the system's)")
	fs.BoolVar(&cfg.VMware.Insecure, "vcenter-insecure", false, "vmware: do not verify the vCenter's certificate (labs only)")
	fs.StringVar(&cfg.VMware.Datacenter, "datacenter", "", "vmware: the datacenter (default: the vCenter's only one)")
	fs.StringVar(&cfg.VMware.Cluster, "cluster", "", "vmware: the cluster this host is (default: the datacenter's only one)")
	fs.StringVar(&cfg.VMware.ResourcePool, "resource-pool", "", "vmware: a resource pool instead of --cluster (the host is the pool's cluster)")
	fs.StringVar(&cfg.VMware.Datastore, "datastore", "", "vmware: the datastore restores' files go to (checked at start)")
	fs.StringVar(&cfg.WorkDir, "work-dir", "/var/lib/restored-agent", "overlays, consoles and logs")
	fs.StringVar(&cfg.LibvirtSocket, "libvirt-socket", kvm.DefaultSocket, "libvirtd's unix socket")
	fs.StringVar(&cfg.NBDAddr, "nbd-addr", agent.DefaultNBDAddr, "where the NBD gate listens for backup jobs (TLS with a snapshot's certificate only); 0.0.0.0:10809 for jobs on other machines, with --advertise-addr")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (restores by state, boot times, libvirt call latency and errors, NBD bytes served, work dir free space), e.g. 127.0.0.1:9464; off when empty")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "the host (name or address) backup jobs reach this host's NBD gate (and iSCSI exports) at (required when --nbd-addr or --iscsi-addr binds every interface)")
	fs.Int64Var(&cfg.PromoteBandwidthMiB, "promote-bandwidth-mib", 0, "bound each disk's copy of a promotion to production to this many MiB/s, so the guests' own I/O keeps its share (0: unbounded)")
	fs.StringVar(&cfg.ISCSIAddr, "iscsi-addr", "127.0.0.1", "the host iSCSI exports' targets listen on (a port of its own each, CHAP); 0.0.0.0 for initiators on other machines, with --advertise-addr")
	fs.Func("bridge", "a host bridge BRIDGED restores may use: NAME=TENANT[,TENANT…] or NAME=* for every tenant (repeat the flag for several bridges; none by default)", func(s string) error {
		b, err := agent.ParseBridge(s)
		if err == nil {
			cfg.Bridges = append(cfg.Bridges, b)
		}
		return err
	})
	fs.StringVar(&cfg.DomainPrefix, "domain-prefix", "restored-", "starts the libvirt names of this host's restore domains; agents that share one libvirtd each need their own")
	fs.StringVar(&cfg.Accelerator, "accelerator", "auto", "auto (probe KVM, fall back to TCG), kvm or tcg")
	reserveVCPUs := fs.Int("reserve-vcpus", 0, "vCPUs kept back from restores")
	fs.Int64Var(&cfg.ReserveMemoryMiB, "reserve-memory-mib", 1024, "memory (MiB) kept back from restores")
	fs.Int64Var(&cfg.ReserveDiskMiB, "reserve-disk-mib", 2048, "disk (MiB) of the work dir's filesystem kept back from restores' overlays (the rest, with what their files take, is offered and each restore counts with its overlay's growth limit)")
	fs.DurationVar(&cfg.BootTimeout, "boot-timeout", 3*time.Minute, "how long to wait for a boot signal")
	signals := fs.String("boot-signals", "serial,guest-agent,screen,hypervisor", "the signals that may prove a boot, comma-separated: serial, guest-agent, screen, hypervisor (VMware: the VM runs and VMware Tools answer, or it runs without tools)")
	fs.DurationVar(&cfg.ScreenSettle, "screen-settle", 20*time.Second, "how long the screen must stay put, in the guest's own display mode, for the screen boot signal")
	fs.DurationVar(&cfg.EvidenceRetention, "evidence-retention", 7*24*time.Hour, "how long a failed boot's evidence (last screenshot, serial console) is kept in <work-dir>/evidence")
	fs.DurationVar(&cfg.PreferredEvery, "preferred-interval", 30*time.Second, "after a failover, how often the agent asks whether the server this host prefers serves again (and moves back when it does)")
	fs.DurationVar(&cfg.RescanInterval, "rescan-interval", time.Minute, "how often the repository is scanned again (send SIGHUP to rescan now)")
	fs.StringVar(&cfg.Marker, "boot-marker", "login:", "serial console regex that proves a boot")
	if err := flagenv.Parse(fs, args, "RESTORED_AGENT", "config"); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *showVer {
		fmt.Println(version.Version)
		return nil
	}
	cfg.ReserveVCPUs = int32(*reserveVCPUs)
	cfg.HyperV.Runner = hyperv.PowerShell{Path: *powershell}
	cfg.BootSignals = strings.Split(*signals, ",")
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if *retired != "" {
		return fmt.Errorf("--token is retired: agents prove who they are with a certificate. Mint a join token (restorectl host join-token %s) and start the agent once with --join-token and --ca-fingerprint; it keeps its certificate in <work-dir>/tls", cfg.HostID)
	}
	log, err := logger()
	if err != nil {
		return err
	}
	cfg.Log = log
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP: scan the repository and report it now.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			a.Rescan()
		}
	}()
	return a.Run(ctx)
}
