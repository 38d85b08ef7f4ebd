// Command agents is `make bench-agents`: three restored processes on
// loopback and N simulated agents in this process, each a real gRPC client
// with its own certificate (enrolled with a join token and a CSR, as an
// agent does), spread over the servers as agents spread themselves. Each
// registers, reports one recovery point only it holds, heartbeats and
// watches its assignments. It measures the TLS handshake per agent, the
// servers' memory, and the time from a restore's commit (its create
// acknowledged) to the moment its host's agent receives the assignment,
// p50 and p99, at 1 agent (the baseline, measured in the same run) and at
// N. It is a benchmark, not a test: it prints figures and never fails on
// them.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stats"
	"github.com/restored/restored/internal/agent"
	"github.com/restored/restored/internal/agentid"
	"github.com/restored/restored/internal/liveness"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func main() {
	var (
		n        = flag.Int("agents", 1000, "simulated agents")
		restores = flag.Int("restores", 1000, "restores created, one host each in turn, to time assignment receipt")
		writers  = flag.Int("writers", 8, "concurrent restore creators")
	)
	flag.Parse()
	if err := run(*n, *restores, *writers); err != nil {
		fmt.Fprintln(os.Stderr, "bench-agents:", err)
		os.Exit(1)
	}
}

// simAgent is one simulated agent: its connection, and when each restore
// id first reached it.
type simAgent struct {
	host   string
	server string
	id     *agentid.Identity
	conn   *grpc.ClientConn
	mu     sync.Mutex
	seen   map[string]time.Time
	notify chan struct{}
}

func run(n, restores, writers int) error {
	dir, err := os.MkdirTemp("", "bench-agents-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := testcluster.Build(".", dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: bin, Dir: dir, N: 3, Args: []string{"--scheduler-interval", "250ms"}})
	if err != nil {
		return err
	}
	defer c.Stop()
	first := c.Procs[0]
	if err := c.CreateTenant(ctx, first, "bench"); err != nil {
		return err
	}
	partner, err := c.MintToken(ctx, first, "bench", "partner")
	if err != nil {
		return err
	}
	rssBefore := rss(c)
	var addrs []string
	for _, p := range c.Procs {
		addrs = append(addrs, p.GRPC)
	}
	fmt.Printf("restored agent benchmark: 3 servers on loopback, %d simulated agents in one process, %d restores\n\n", n, restores)

	// Enroll every agent (a join token, a CSR), then time one TLS handshake
	// of each agent's certificate, one after another.
	t0 := time.Now()
	agents := make([]*simAgent, n)
	handshakes := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range agents {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := enroll(ctx, c, first, fmt.Sprintf("sim-%04d", i), filepath.Join(dir, "agents", strconv.Itoa(i)), addrs)
			if err != nil {
				errs <- err
				return
			}
			agents[i] = a
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("enrolled %d agents in %s (join token + CSR each)\n", n, time.Since(t0).Round(time.Millisecond))
	for i, a := range agents {
		if handshakes[i], err = a.handshake(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("TLS 1.3 handshake with an agent certificate (TCP connect included, one at a time): p50 %s, p99 %s\n\n",
		stats.Percentile(handshakes, 50).Round(time.Microsecond), stats.Percentile(handshakes, 99).Round(time.Microsecond))

	// Baseline: one agent connected.
	if err := agents[0].start(ctx); err != nil {
		return err
	}
	base, err := receipts(ctx, c, partner, agents[:1], min(restores, 200), 1)
	if err != nil {
		return err
	}
	// Then every agent.
	t0 = time.Now()
	for _, a := range agents[1:] {
		wg.Add(1)
		go func(a *simAgent) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := a.start(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "agent", a.host, err)
			}
		}(a)
	}
	wg.Wait()
	fmt.Printf("%d agents registered, reported and watching in %s\n", n, time.Since(t0).Round(time.Millisecond))
	per := map[string]int{}
	for _, a := range agents {
		per[a.server]++
	}
	fmt.Printf("agents per server: %v\n", per)
	time.Sleep(3 * time.Second) // a few heartbeat rounds
	rssAfter := rss(c)
	full, err := receipts(ctx, c, partner, agents, restores, writers)
	if err != nil {
		return err
	}
	fmt.Printf("\n%-10s %10s %10s %10s %12s\n", "agents", "restores", "p50", "p99", "p99 vs 1")
	fmt.Printf("%-10d %10d %10s %10s %12s\n", 1, len(base), stats.Percentile(base, 50).Round(time.Microsecond), stats.Percentile(base, 99).Round(time.Microsecond), "1.00x")
	fmt.Printf("%-10d %10d %10s %10s %11.2fx\n", n, len(full), stats.Percentile(full, 50).Round(time.Microsecond), stats.Percentile(full, 99).Round(time.Microsecond),
		float64(stats.Percentile(full, 99))/float64(max(stats.Percentile(base, 99), 1)))
	fmt.Printf("(assignment commit = the create acknowledged → the host's agent receives it on its watch)\n\n")
	for _, p := range c.Procs {
		fmt.Printf("server %s RSS: %d MiB before the agents, %d MiB with %d agents connected (%d on it)\n", p.ID, rssBefore[p.ID]>>20, rssAfter[p.ID]>>20, n, per[p.GRPC])
	}
	fmt.Printf("\ntarget: receipt p99 <= 50ms at 1,000 agents\n")
	p99, b99 := stats.Percentile(full, 99), stats.Percentile(base, 99)
	results.Record(results.Row{Bench: "agents", Measure: fmt.Sprintf("assignment receipt p99, %d agents", n), Ours: float64(p99) / 1e6, Baseline: float64(b99) / 1e6,
		BaselineIs: "1 agent", Unit: "ms", Ratio: float64(p99) / float64(max(b99, 1)), Target: "<= 50 ms", Met: p99 <= 50*time.Millisecond})
	return nil
}

// enroll mints a join token for host, enrolls (CSR) and connects to the
// server the host prefers.
func enroll(ctx context.Context, c *testcluster.Cluster, via *testcluster.Proc, host, dir string, servers []string) (*simAgent, error) {
	secret, fp, err := c.JoinToken(ctx, via, host)
	if err != nil {
		return nil, fmt.Errorf("join token for %s: %w", host, err)
	}
	id, err := agentid.Enroll(ctx, agentid.EnrollOptions{Server: via.GRPC, JoinToken: secret, CAFingerprint: fp, Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", host, err)
	}
	server := agent.PreferredOrder(host, servers)[0]
	conn, err := grpc.NewClient(server, append(liveness.DialOptions(), grpc.WithTransportCredentials(credentials.NewTLS(id.DialConfig(server))))...)
	if err != nil {
		return nil, err
	}
	return &simAgent{host: host, server: server, id: id, conn: conn, seen: map[string]time.Time{}, notify: make(chan struct{}, 1)}, nil
}

// handshake times one TLS handshake of the agent's certificate with its
// server (TCP connect included), on an otherwise idle machine.
func (a *simAgent) handshake(ctx context.Context) (time.Duration, error) {
	t := time.Now()
	raw, err := net.Dial("tcp", a.server)
	if err != nil {
		return 0, err
	}
	tc := tls.Client(raw, a.id.DialConfig(a.server))
	err = tc.HandshakeContext(ctx)
	took := time.Since(t)
	tc.Close()
	if err != nil {
		return 0, fmt.Errorf("handshake of %s: %w", a.host, err)
	}
	return took, nil
}

// start registers the agent, reports its recovery point, heartbeats and
// watches its assignments, noting when each restore first arrives.
func (a *simAgent) start(ctx context.Context) error {
	client := restorev1.NewAgentServiceClient(a.conn)
	if _, err := client.Register(ctx, &restorev1.RegisterRequest{ProtocolVersion: version.AgentProtocol, HostId: a.host, AgentVersion: "bench",
		Hypervisors: []string{"kvm"}, Accelerator: "kvm", Capacity: &restorev1.Capacity{Vcpus: 1 << 20, MemoryMib: 1 << 40}}); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if _, err := client.ReportRecoveryPoints(ctx, &restorev1.ReportRecoveryPointsRequest{ProtocolVersion: version.AgentProtocol, HostId: a.host,
		RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp-" + a.host, Tenant: "bench", Asset: a.host, Valid: true}}}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	stream, err := client.WatchAssignments(ctx, &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: a.host})
	if err != nil {
		return err
	}
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				return
			}
			now := time.Now()
			a.mu.Lock()
			for _, as := range msg.Assignments {
				if _, ok := a.seen[as.Restore.Id]; !ok {
					a.seen[as.Restore.Id] = now
				}
			}
			a.mu.Unlock()
			select {
			case a.notify <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		for ctx.Err() == nil {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, _ = client.Heartbeat(hctx, &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: a.host})
			cancel()
			time.Sleep(2 * time.Second)
		}
	}()
	return nil
}

// receipts creates count restores from writers, round-robin over the
// agents' recovery points (so each lands on that agent), and returns for
// each the time from its acknowledged create to its receipt.
func receipts(ctx context.Context, c *testcluster.Cluster, partner string, agents []*simAgent, count, writers int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		out   []time.Duration
		next  atomic.Int64
		fails atomic.Int64
		wg    sync.WaitGroup
		first atomic.Value
	)
	for w := range writers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			p := c.Procs[w%len(c.Procs)]
			client := restorev1.NewRestoreServiceClient(p.Conn())
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				a := agents[i%len(agents)]
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := client.CreateRestore(testcluster.Ctx(cctx, partner), &restorev1.CreateRestoreRequest{
					RecoveryPointId: "rp-" + a.host, Mode: restorev1.Mode_MODE_VIRTUALIZE, Vcpus: 1, MemoryMib: 128, TtlSeconds: 3600,
					RequestId: fmt.Sprintf("bench-%d-%d", len(agents), i)})
				cancel()
				committed := time.Now()
				if err != nil {
					fails.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				got, ok := a.await(ctx, resp.Restore.Id, 10*time.Second)
				if !ok {
					fails.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("restore %s (%s on %s) did not reach %s", resp.Restore.Id, resp.Restore.State, resp.Restore.HostId, a.host))
					continue
				}
				mu.Lock()
				out = append(out, max(got.Sub(committed), 0))
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(out) == 0 {
		return nil, fmt.Errorf("no restore reached its agent (%d failures; the first: %v)", fails.Load(), first.Load())
	}
	if f := fails.Load(); f > 0 {
		fmt.Printf("  (%d of %d restores failed or did not arrive within 10 s; the first: %v)\n", f, count, first.Load())
	}
	return out, nil
}

// await waits until restore id has reached the agent and says when.
func (a *simAgent) await(ctx context.Context, id string, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		t, ok := a.seen[id]
		a.mu.Unlock()
		if ok {
			return t, true
		}
		select {
		case <-a.notify:
		case <-time.After(time.Millisecond):
		case <-deadline:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// rss reads each server's resident memory (Linux /proc).
func rss(c *testcluster.Cluster) map[string]int64 {
	out := map[string]int64{}
	for _, p := range c.Procs {
		if n := stats.RSS(strconv.Itoa(p.PID())); n > 0 {
			out[p.ID] = n
		}
	}
	return out
}
