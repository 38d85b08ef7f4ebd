// Command raft is `make bench-raft`: it starts three restored processes on
// loopback and measures committed restore-create writes per second with p50
// and p99 latency at 1 and 64 concurrent clients, against a baseline measured
// in the same run (gRPC health checks on the same leader: the cost of the
// transport alone), then the leader failover time (kill -9 → first commit on
// the new leader) over several trials. First it measures what mutual TLS
// costs raft itself: in-process nodes over plain TCP and over TLS. It is a benchmark, not a test: it
// prints figures and never fails on them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/version"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	var (
		duration = flag.Duration("duration", 5*time.Second, "how long each throughput phase runs")
		trials   = flag.Int("failover-trials", 5, "leader kill -9 trials")
		profile  = flag.String("cpuprofile", "", "write the leader's CPU profile during the 64-client write phase to this file (and a follower's to FILE.follower)")
	)
	flag.Parse()
	if err := run(*duration, *trials, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench-raft:", err)
		os.Exit(1)
	}
}

type result struct {
	ops      int
	elapsed  time.Duration
	p50, p99 time.Duration
	errors   int64
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// load runs op from `clients` goroutines for d and collects latencies.
func load(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client, i int) error) result {
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(d)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(stop); i++ {
				t := time.Now()
				if err := op(ctx, c, i); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := result{ops: len(lats), elapsed: elapsed, errors: errs.Load()}
	if len(lats) > 0 {
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
	}
	return r
}

func run(d time.Duration, trials int, profile string) error {
	dir, err := os.MkdirTemp("", "bench-raft-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if err := transportCost(ctx, d); err != nil {
		return fmt.Errorf("raft transport: %w", err)
	}
	bin, err := testcluster.Build(".", dir)
	if err != nil {
		return err
	}
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: bin, Dir: dir, N: 3, Debug: profile != "",
		// The bench measures raft, not the per-token rate limit.
		Args: []string{"--token-rate", "-1"}})
	if err != nil {
		return err
	}
	defer c.Stop()
	leader, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	actx := testcluster.Ctx(ctx, c.Token)
	if err := c.CreateTenant(ctx, leader, "bench"); err != nil {
		return err
	}
	partnerSecret, err := c.MintToken(ctx, leader, "bench", "partner")
	if err != nil {
		return err
	}
	agentDir, err := os.MkdirTemp("", "bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(agentDir)
	agentConn, err := c.AgentConn(ctx, leader, "bench-host", agentDir)
	if err != nil {
		return err
	}
	defer agentConn.Close()
	agent := restorev1.NewAgentServiceClient(agentConn)
	agctx := ctx
	if _, err := agent.Register(agctx, &restorev1.RegisterRequest{ProtocolVersion: version.AgentProtocol, HostId: "bench-host",
		Capacity: &restorev1.Capacity{Vcpus: 1 << 30, MemoryMib: 1 << 50}}); err != nil {
		return err
	}
	if _, err := agent.ReportRecoveryPoints(agctx, &restorev1.ReportRecoveryPointsRequest{ProtocolVersion: version.AgentProtocol, HostId: "bench-host",
		RecoveryPoints: []*restorev1.RecoveryPoint{{Id: "rp-bench", Tenant: "bench", Asset: "a", Valid: true}}}); err != nil {
		return err
	}
	// Keep the host READY, as a real agent would.
	hbCtx, stopHeartbeats := context.WithCancel(agctx)
	defer stopHeartbeats()
	go func() {
		// Through the first leader: after a failover it forwards them,
		// vouching for the agent's certificate.
		for hbCtx.Err() == nil {
			_, _ = agent.Heartbeat(hbCtx, &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: "bench-host"})
			time.Sleep(time.Second)
		}
	}()
	pctx := testcluster.Ctx(ctx, partnerSecret)
	restores := restorev1.NewRestoreServiceClient(leader.Conn())
	health := healthpb.NewHealthClient(leader.Conn())
	var seq atomic.Int64
	create := func(ctx context.Context, _, _ int) error {
		_, err := restores.CreateRestore(pctx, &restorev1.CreateRestoreRequest{
			RecoveryPointId: "rp-bench", Mode: restorev1.Mode_MODE_VERIFY, MemoryMib: 96,
			RequestId: fmt.Sprintf("bench-%d", seq.Add(1)),
		})
		return err
	}
	check := func(ctx context.Context, _, _ int) error {
		_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}

	fmt.Printf("restored raft benchmark: 3 servers on loopback, %d cores, %s per phase, clients talk to the leader (%s)\n\n", numCPU(), d, leader.ID)
	fmt.Printf("%-8s %-22s %12s %10s %10s %8s %14s\n", "clients", "operation", "ops/s", "p50", "p99", "errors", "vs baseline")
	for _, clients := range []int{1, 64} {
		base := load(ctx, clients, d, check)
		var prof chan error
		if profile != "" && clients == 64 {
			prof = make(chan error, 2)
			go func() { prof <- fetchProfile(leader.Debug, d, profile) }()
			go func() { prof <- fetchProfile(c.Followers(leader)[0].Debug, d, profile+".follower") }()
		}
		cpuBefore := cpuTimes(c)
		w := load(ctx, clients, d, create)
		cpuAfter := cpuTimes(c)
		if prof != nil {
			for range 2 {
				if err := <-prof; err != nil {
					return err
				}
			}
		}
		fmt.Printf("%-8d %-22s %12.0f %10s %10s %8d %14s\n", clients, "baseline: health check", base.rate(), base.p50.Round(time.Microsecond), base.p99.Round(time.Microsecond), base.errors, "1.00x")
		fmt.Printf("%-8d %-22s %12.0f %10s %10s %8d %13.2fx\n", clients, "restore create (raft)", w.rate(), w.p50.Round(time.Microsecond), w.p99.Round(time.Microsecond), w.errors, w.rate()/base.rate())
		fmt.Printf("         CPU per write:")
		for _, p := range c.Procs {
			role := "follower"
			if p == leader {
				role = "leader"
			}
			fmt.Printf(" %s(%s) %s", p.ID, role, ((cpuAfter[p.ID] - cpuBefore[p.ID]) / time.Duration(max(w.ops, 1))).Round(time.Microsecond))
		}
		fmt.Printf(" load generator %s\n", ((cpuAfter["bench"] - cpuBefore["bench"]) / time.Duration(max(w.ops, 1))).Round(time.Microsecond))
		if clients == 64 {
			results.Record(results.Row{Bench: "raft", Measure: "committed writes/s, 64 clients, 3 servers", Ours: w.rate(), Baseline: base.rate(),
				BaselineIs: "health check", Unit: "/s", Ratio: w.rate() / base.rate(), Target: ">= 10000/s", Met: w.rate() >= 10000})
			results.Record(results.Row{Bench: "raft", Measure: "write p99, 64 clients", Ours: ms(w.p99), Baseline: ms(base.p99),
				BaselineIs: "health check", Unit: "ms", Ratio: float64(w.p99) / float64(max(base.p99, 1)), Target: "<= 25 ms", Met: w.p99 <= 25*time.Millisecond})
		}
	}
	fmt.Printf("\ntargets: >= 10000 writes/s at 64 clients with p99 <= 25ms\n\n")

	// Failover: kill -9 the leader, time until the first write commits on a new leader.
	var times []time.Duration
	for trial := 1; trial <= trials; trial++ {
		old, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		survivor := c.Followers(old)[0]
		client := restorev1.NewAdminServiceClient(survivor.Conn())
		killed := time.Now()
		old.Kill()
		for i := 0; ; i++ {
			cctx, cancel := context.WithTimeout(actx, time.Second)
			_, err := client.CreateTenant(cctx, &restorev1.CreateTenantRequest{Id: fmt.Sprintf("failover-%d-%d", trial, i)})
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				return fmt.Errorf("trial %d: no commit 30s after the kill: %v", trial, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(killed)
		times = append(times, took)
		nl, _ := c.Leader(ctx)
		name := "?"
		if nl != nil {
			name = nl.ID
		}
		fmt.Printf("failover trial %d: killed %s, first commit on %s after %s\n", trial, old.ID, name, took.Round(time.Millisecond))
		if err := old.Start(); err != nil {
			return err
		}
		// Let the restarted server catch up before the next trial.
		for deadline := time.Now().Add(30 * time.Second); ; {
			st, err := c.Status(ctx, old)
			if err == nil && st.LeaderId != "" && st.AppliedIndex >= st.CommitIndex {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("trial %d: %s did not catch up (last status %v, err %v); logs:\n%s", trial, old.ID, st, err, tail(c))
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	med := times[len(times)/2]
	results.Record(results.Row{Bench: "raft", Measure: "leader failover (kill -9 to first commit), median", Ours: ms(med), Baseline: ms(3 * 500 * time.Millisecond),
		BaselineIs: "3 election timeouts", Unit: "ms", Ratio: float64(med) / float64(1500*time.Millisecond), Target: "<= 1200 ms", Met: med <= 1200*time.Millisecond})
	fmt.Printf("failover median %s (min %s, max %s) over %d trials; target median <= 1.2s\n",
		times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), len(times))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fetchProfile saves the leader's CPU profile over d.
func fetchProfile(addr string, d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// tail returns the end of every server's log, for a failed run.
func tail(c *testcluster.Cluster) string {
	out := ""
	for _, p := range c.Procs {
		b, _ := os.ReadFile(p.LogPath)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		out += fmt.Sprintf("---- %s ----\n%s\n", p.ID, b)
	}
	return out
}

// cpuTimes reads the CPU time of every server and of this process.
func cpuTimes(c *testcluster.Cluster) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range c.Procs {
		out[p.ID] = p.CPU()
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out["bench"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return out
}
