package multihost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/testnet"
	"github.com/restored/restored/internal/vmspec"
)

// lab is the cluster in namespaces: servers s1–s3, agents a1 and a2, and
// the client namespace the test itself dials from.
type lab struct {
	t       *testing.T
	net     *testnet.Net
	cluster *testcluster.Cluster
	client  *testnet.Host
	agents  map[string]*agentProc
	partner string
	http    *http.Client
	drv     *kvm.Driver
	created int
	// bins holds the binaries built for the test (restorectl too).
	bins string
}

// agentProc is one hypervisor agent in its own namespace, with its own
// repository, work dir and domain prefix.
type agentProc struct {
	name, hostID string
	ns           *testnet.Host
	repo, work   string
	prefix       string
	log          string
	args         []string
	bin          string

	mu   sync.Mutex
	pid  int
	done chan struct{}
}

// startLab builds the binaries, the network, the servers and the agents;
// holdings says which recovery points (id → asset) each agent's repository
// holds. Everything is removed when the test ends, pass or fail.
func startLab(t *testing.T, holdings map[string]map[string]string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the multi-host test makes network namespaces: run it as root (make test does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := testimage.Path("../..")
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	restored, err := testcluster.BuildCommand("../..", bins, "restored")
	if err != nil {
		t.Fatal(err)
	}
	agentBin, err := testcluster.BuildCommand("../..", bins, "hypervisor-agent")
	if err != nil {
		t.Fatal(err)
	}
	n, err := testnet.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after every process is gone.
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("removing the test network: %v", err)
		}
		if left := testnet.Leftovers(context.Background(), n.Prefix); len(left) > 0 {
			t.Errorf("the test network left %v", left)
		}
	})
	l := &lab{t: t, net: n, agents: map[string]*agentProc{}, bins: bins}
	var servers []*testnet.Host
	for _, name := range []string{"s1", "s2", "s3"} {
		h, err := n.Add(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, h)
	}
	if l.client, err = n.Add(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	l.cluster, err = testcluster.Start(ctx, testcluster.Options{Binary: restored, Dir: t.TempDir(), N: 3, Hosts: servers, Client: l.client,
		Args: []string{"--scheduler-interval", "250ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.cluster.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range l.cluster.Procs {
				b, _ := os.ReadFile(p.LogPath)
				t.Logf("---- %s log ----\n%s", p.ID, tail(b, 120))
			}
		}
	})
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(l.cluster.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	l.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: l.client.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	first := l.cluster.Procs[0]
	if err := l.cluster.CreateTenant(ctx, first, "acme"); err != nil {
		t.Fatal(err)
	}
	if l.partner, err = l.cluster.MintToken(ctx, first, "acme", "partner"); err != nil {
		t.Fatal(err)
	}
	l.drv = kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(l.drv.Close)
	var grpcs []string
	for _, p := range l.cluster.Procs {
		grpcs = append(grpcs, p.GRPC)
	}
	for _, name := range []string{"a1", "a2"} {
		ns, err := n.Add(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		a := &agentProc{name: name, hostID: fmt.Sprintf("%s-%s", n.Prefix, name), ns: ns, bin: agentBin,
			repo: testimage.DirForQEMU(t, "restored-repo-"), work: testimage.DirForQEMU(t, "restored-work-"),
			prefix: fmt.Sprintf("%s-%s-", n.Prefix, name), log: filepath.Join(bins, name+".log")}
		for id, asset := range holdings[name] {
			if _, err := testimage.AddRecoveryPoint(a.repo, testimage.RecoveryPoint{ID: id, Tenant: "acme", Asset: asset, From: img}); err != nil {
				t.Fatal(err)
			}
		}
		secret, fp, err := l.cluster.JoinToken(ctx, first, a.hostID)
		if err != nil {
			t.Fatal(err)
		}
		a.args = []string{"--server", strings.Join(grpcs, ","), "--host-id", a.hostID, "--join-token", secret, "--ca-fingerprint", fp,
			"--repository", a.repo, "--work-dir", a.work, "--domain-prefix", a.prefix, "--reserve-memory-mib", "0",
			"--rescan-interval", "10m", "--boot-timeout", "90s", "--preferred-interval", "2s",
			"--nbd-addr", "0.0.0.0:10809", "--advertise-addr", ns.IP}
		l.agents[name] = a
		// Runs before the network goes: no domain, overlay or process is left.
		t.Cleanup(func() {
			a.kill()
			l.teardown(a)
			if t.Failed() {
				b, _ := os.ReadFile(a.log)
				t.Logf("---- agent %s log ----\n%s", a.name, tail(b, 150))
			}
		})
		a.start(t)
	}
	for _, a := range l.agents {
		l.eventually(90*time.Second, "host "+a.hostID+" READY with its recovery points", func() bool {
			h := l.host(a.hostID)
			return h != nil && h.State == restorev1.HostState_HOST_STATE_READY && int(h.RecoveryPoints) == len(holdings[a.name])
		})
	}
	return l
}

func tail(b []byte, lines int) string {
	s := strings.Split(string(b), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// start runs the agent in its namespace (by PID; it dies with the test).
func (a *agentProc) start(t *testing.T) {
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := a.ns.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	a.mu.Lock()
	a.pid, a.done = cmd.Process.Pid, done
	a.mu.Unlock()
}

// signal sends the agent a signal (by the PID it started).
func (a *agentProc) signal(sig syscall.Signal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pid != 0 {
		_ = syscall.Kill(a.pid, sig)
	}
}

// kill stops the agent with SIGKILL, by the PID it started, and waits.
func (a *agentProc) kill() {
	a.mu.Lock()
	pid, done := a.pid, a.done
	a.pid = 0
	a.mu.Unlock()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-done
}

// teardown removes every domain and work dir the agent's host holds.
func (l *lab) teardown(a *agentProc) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := kvm.NewHost(l.drv, kvm.HostConfig{HostID: a.hostID, WorkDir: a.work, Facts: vmspec.HostFacts{DomainPrefix: a.prefix},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	owned, err := h.Owned(ctx)
	if err != nil {
		l.t.Errorf("listing host %s's domains: %v", a.hostID, err)
		return
	}
	for _, o := range owned {
		if err := h.Teardown(ctx, o.ID); err != nil {
			l.t.Errorf("tearing down restore %s on %s: %v", o.ID, a.hostID, err)
		}
	}
}

// live is a server that runs.
func (l *lab) live() []*testcluster.Proc {
	var out []*testcluster.Proc
	for _, p := range l.cluster.Procs {
		if p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

func (l *lab) ctx(token string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	return testcluster.Ctx(ctx, token), cancel
}

// host reads a host through the first live server that answers.
func (l *lab) host(id string) *restorev1.Host {
	for _, p := range l.live() {
		ctx, cancel := l.ctx(l.cluster.Token)
		resp, err := restorev1.NewHostServiceClient(p.Conn()).GetHost(ctx, &restorev1.GetHostRequest{Id: id})
		cancel()
		if err == nil {
			return resp.Host
		}
	}
	return nil
}

// restore reads a restore as the partner through the first live server.
func (l *lab) restore(id string) *restorev1.Restore {
	for _, p := range l.live() {
		ctx, cancel := l.ctx(l.partner)
		resp, err := restorev1.NewRestoreServiceClient(p.Conn()).GetRestore(ctx, &restorev1.GetRestoreRequest{Id: id})
		cancel()
		if err == nil {
			return resp.Restore
		}
	}
	return nil
}

// create makes a restore as the partner.
func (l *lab) create(req *restorev1.CreateRestoreRequest) *restorev1.Restore {
	l.t.Helper()
	ctx, cancel := l.ctx(l.partner)
	defer cancel()
	l.created++
	req.RequestId = fmt.Sprintf("multihost-%d", l.created)
	resp, err := restorev1.NewRestoreServiceClient(l.live()[0].Conn()).CreateRestore(ctx, req)
	if err != nil {
		l.t.Fatalf("create restore of %s: %v", req.RecoveryPointId, err)
	}
	return resp.Restore
}

func (l *lab) eventually(timeout time.Duration, what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proc is the server with id.
func (l *lab) proc(id string) *testcluster.Proc {
	for _, p := range l.cluster.Procs {
		if p.ID == id {
			return p
		}
	}
	l.t.Fatalf("no server %q", id)
	return nil
}

// domain is the running domain of a restore on an agent's host, or nil.
func (l *lab) domain(a *agentProc, restoreID string) *kvm.Domain {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	doms, err := l.drv.List(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, d := range doms {
		if d.Meta.HostID == a.hostID && d.Meta.RestoreID == restoreID {
			return &d
		}
	}
	return nil
}
