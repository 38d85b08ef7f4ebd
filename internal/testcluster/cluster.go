// Package testcluster starts real restored processes on loopback for the
// cluster end-to-end test and the raft benchmark: it builds the binary,
// picks free ports, bootstraps the first server, joins the others, and can
// kill -9 and restart a server. It stops only the processes it started.
package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentid"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/testnet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// Build compiles cmd/restored from the module at root into dir.
func Build(root, dir string) (string, error) { return BuildCommand(root, dir, "restored") }

// BuildCommand compiles cmd/<name> from the module at root into dir.
func BuildCommand(root, dir, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// Proc is one restored process.
type Proc struct {
	ID, GRPC, HTTP, Raft, DataDir, LogPath string
	// Debug is the pprof address when Options.Debug is set.
	Debug string
	bin   string
	args  []string
	// caCert is the cluster CA its clients trust.
	caCert string
	// ns is the namespace it runs in (nil: this one); dial connects to it
	// (nil: directly).
	ns   *testnet.Host
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	conn *grpc.ClientConn
}

// Cluster is a set of restored processes.
type Cluster struct {
	Procs []*Proc
	// Token is the bootstrap admin token.
	Token string
	// CACert is the cluster CA's certificate (the first server's), which
	// clients trust; CAFingerprint pins it.
	CACert, CAFingerprint string
}

// Options configure Start.
type Options struct {
	Binary string
	Dir    string
	N      int
	// Args are extra flags for every server.
	Args []string
	// Debug serves pprof on a free loopback port per server (Proc.Debug).
	Debug bool
	// Hosts, when set, runs server i inside Hosts[i]'s network namespace,
	// listening on every interface (0.0.0.0) at fixed ports and advertising
	// the host's address; Client is where this package's connections to
	// them are dialled from.
	Hosts  []*testnet.Host
	Client *testnet.Host
}

// Ports of servers in namespaces (each has its own address).
const (
	NSGRPCPort = 7443
	NSHTTPPort = 7080
	NSRaftPort = 7300
)

// FreePort returns a loopback address whose port was free a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start starts N servers: the first bootstraps, the others join it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c := &Cluster{}
	for i := 1; i <= o.N; i++ {
		p := &Proc{ID: fmt.Sprintf("s%d", i), bin: o.Binary}
		var err error
		var listen []string
		if len(o.Hosts) >= i {
			h := o.Hosts[i-1]
			p.ns = h
			p.GRPC, p.HTTP, p.Raft = h.Addr(NSGRPCPort), h.Addr(NSHTTPPort), h.Addr(NSRaftPort)
			listen = []string{"--grpc-addr", fmt.Sprintf("0.0.0.0:%d", NSGRPCPort), "--http-addr", fmt.Sprintf("0.0.0.0:%d", NSHTTPPort),
				"--raft-addr", fmt.Sprintf("0.0.0.0:%d", NSRaftPort), "--advertise-addr", h.IP}
			if o.Client != nil {
				p.dial = o.Client.DialContext
			}
		} else {
			for _, a := range []*string{&p.GRPC, &p.HTTP, &p.Raft} {
				if *a, err = FreePort(); err != nil {
					return nil, err
				}
			}
			listen = []string{"--grpc-addr", p.GRPC, "--http-addr", p.HTTP, "--raft-addr", p.Raft}
		}
		if o.Debug {
			if p.Debug, err = FreePort(); err != nil {
				return nil, err
			}
			p.args = append(p.args, "--debug-addr", p.Debug)
		}
		p.DataDir = filepath.Join(o.Dir, p.ID)
		p.LogPath = filepath.Join(o.Dir, p.ID+".log")
		p.args = append(p.args, []string{"--data-dir", p.DataDir, "--node-id", p.ID}...)
		p.args = append(p.args, listen...)
		p.args = append(p.args, o.Args...)
		c.Procs = append(c.Procs, p)
	}
	first := c.Procs[0]
	if err := first.Start(); err != nil {
		return nil, err
	}
	tokenPath := filepath.Join(first.DataDir, "bootstrap-token")
	if err := waitFor(ctx, 15*time.Second, "bootstrap token", func() bool {
		b, err := os.ReadFile(tokenPath)
		c.Token = strings.TrimSpace(string(b))
		return err == nil && c.Token != ""
	}); err != nil {
		c.Stop()
		return nil, err
	}
	c.CACert = filepath.Join(first.DataDir, "tls", "ca.pem")
	ca, err := pki.LoadCA(c.CACert, "")
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.CAFingerprint = ca.Fingerprint()
	for _, p := range c.Procs {
		p.caCert = c.CACert
	}
	for _, p := range c.Procs[1:] {
		p.args = append(p.args, "--join", first.GRPC, "--token", c.Token, "--ca-fingerprint", c.CAFingerprint)
		if err := p.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := waitFor(ctx, 30*time.Second, "every server to be a voter", func() bool {
		cl, err := c.Status(ctx, first)
		return err == nil && len(cl.Servers) == o.N && cl.LeaderId != ""
	}); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, c.logTails(20))
	}
	return c, nil
}

// Host is the namespace the process runs in (nil: the test's own).
func (p *Proc) Host() *testnet.Host { return p.ns }

// Start starts (or restarts) the process.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	if p.ns != nil {
		cmd = p.ns.Command(p.bin, p.args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test or benchmark dies, its servers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.ID, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// Kill sends SIGKILL to the process (by PID) and waits for it to exit.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// CPU returns the process's user+system CPU time so far (Linux /proc).
func (p *Proc) CPU() time.Duration {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// PID is the process's id (0 when it does not run).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Alive reports whether the process runs.
func (p *Proc) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Conn is a gRPC connection to the process.
func (p *Proc) Conn() *grpc.ClientConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		tlsc, err := pki.DialConfig(p.caCert, p.GRPC, nil)
		if err != nil {
			panic(fmt.Sprintf("testcluster: %s: %v", p.ID, err)) // the CA was loaded at Start
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsc))}
		if p.dial != nil {
			opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return p.dial(ctx, "tcp", addr) }))
		}
		p.conn, _ = grpc.NewClient(p.GRPC, opts...)
	}
	return p.conn
}

// Ctx returns ctx carrying the token.
func Ctx(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// Status asks p for the cluster view.
func (c *Cluster) Status(ctx context.Context, p *Proc) (*restorev1.GetClusterResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return restorev1.NewAdminServiceClient(p.Conn()).GetCluster(Ctx(cctx, c.Token), &restorev1.GetClusterRequest{})
}

// Leader returns the live process that leads, as seen by a live server.
func (c *Cluster) Leader(ctx context.Context) (*Proc, error) {
	for _, p := range c.Procs {
		if !p.Alive() {
			continue
		}
		st, err := c.Status(ctx, p)
		if err != nil || st.LeaderId == "" {
			continue
		}
		for _, q := range c.Procs {
			if q.ID == st.LeaderId && q.Alive() {
				return q, nil
			}
		}
	}
	return nil, errors.New("no live leader")
}

// Followers returns the live processes that do not lead.
func (c *Cluster) Followers(leader *Proc) []*Proc {
	var out []*Proc
	for _, p := range c.Procs {
		if p != leader && p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

// logTails is the end of every server's log, for an error.
func (c *Cluster) logTails(lines int) string {
	var b strings.Builder
	for _, p := range c.Procs {
		data, _ := os.ReadFile(p.LogPath)
		l := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(l) > lines {
			l = l[len(l)-lines:]
		}
		fmt.Fprintf(&b, "---- %s (%s) ----\n%s\n", p.ID, p.LogPath, strings.Join(l, "\n"))
	}
	return b.String()
}

// Stop kills every process this cluster started and closes connections.
func (c *Cluster) Stop() {
	for _, p := range c.Procs {
		p.Kill()
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
			p.conn = nil
		}
		p.mu.Unlock()
	}
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// CreateTenant creates a tenant through p with the admin token.
func (c *Cluster) CreateTenant(ctx context.Context, p *Proc, id string) error {
	_, err := restorev1.NewAdminServiceClient(p.Conn()).CreateTenant(Ctx(ctx, c.Token), &restorev1.CreateTenantRequest{Id: id})
	return err
}

// MintToken creates a token through p with the admin token and returns its secret.
func (c *Cluster) MintToken(ctx context.Context, p *Proc, tenant, role string) (string, error) {
	resp, err := restorev1.NewAdminServiceClient(p.Conn()).CreateToken(Ctx(ctx, c.Token), &restorev1.CreateTokenRequest{Tenant: tenant, Role: role})
	if err != nil {
		return "", err
	}
	return resp.Secret, nil
}

// JoinToken mints a join token for host through p and returns its secret
// and the CA fingerprint an agent pins.
func (c *Cluster) JoinToken(ctx context.Context, p *Proc, host string) (string, string, error) {
	resp, err := restorev1.NewHostServiceClient(p.Conn()).CreateJoinToken(Ctx(ctx, c.Token), &restorev1.CreateJoinTokenRequest{HostId: host})
	if err != nil {
		return "", "", err
	}
	return resp.Secret, resp.CaFingerprint, nil
}

// AgentConn enrolls a stand-in agent for host (its certificate kept in
// dir) and returns a connection to p that presents it.
func (c *Cluster) AgentConn(ctx context.Context, p *Proc, host, dir string) (*grpc.ClientConn, error) {
	secret, fp, err := c.JoinToken(ctx, p, host)
	if err != nil {
		return nil, err
	}
	id, err := agentid.Enroll(ctx, agentid.EnrollOptions{Server: p.GRPC, JoinToken: secret, CAFingerprint: fp, Dir: dir})
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(p.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(id.DialConfig(p.GRPC))))
}

// AssignGuest waits until host's agent reports the domain name (rescan, if
// set, asks it to report now; it is called every few seconds) and assigns
// it to tenant through p, as an operator does.
func (c *Cluster) AssignGuest(ctx context.Context, p *Proc, host, name, tenant string, rescan func()) (*restorev1.Guest, error) {
	hosts := restorev1.NewHostServiceClient(p.Conn())
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		if rescan != nil && i%30 == 0 {
			rescan()
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := hosts.ListHostDomains(Ctx(cctx, c.Token), &restorev1.ListHostDomainsRequest{Id: host})
		cancel()
		if err == nil && slices.ContainsFunc(l.Domains, func(d *restorev1.HostDomain) bool { return d.Name == name }) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("host %s did not report domain %s within a minute (last: %v)", host, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := restorev1.NewGuestServiceClient(p.Conn()).RegisterGuest(Ctx(cctx, c.Token), &restorev1.RegisterGuestRequest{
		Hypervisor: restorev1.Hypervisor_HYPERVISOR_KVM, HostId: host, Name: name, Tenant: tenant})
	if err != nil {
		return nil, err
	}
	return resp.Guest, nil
}

// BackupRun runs `restorectl backup run` (the binary ctl) against p with
// token for guestID into repo, and returns its JSON summary and what it
// printed on stderr (its progress).
func (c *Cluster) BackupRun(ctl string, p *Proc, token, guestID, repo string, args ...string) (backupjob.Summary, string, error) {
	cmd := exec.Command(ctl, append([]string{"--addr", p.GRPC, "--ca-cert", c.CACert, "--token", token, "--output", "json",
		"backup", "run", "--guest", guestID, "--repository", repo}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var sum backupjob.Summary
	if err := cmd.Run(); err != nil {
		return sum, errOut.String(), fmt.Errorf("restorectl backup run %v: %w\n%s%s", args, err, out.String(), errOut.String())
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		return sum, errOut.String(), fmt.Errorf("the summary of restorectl backup run: %w\n%s", err, out.String())
	}
	return sum, errOut.String() + out.String(), nil
}
