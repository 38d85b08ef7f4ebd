// Command scale is `make bench-scale`: the control plane's own work at the
// size of a large hoster, in this process: the real FSM, state store and
// scheduler (no network and no raft: what the leader does for each
// placement once an entry commits), with simulated hosts and recovery
// points spread across them, and restores arriving in bursts. Each burst
// is placed the way the API places a create (the scheduler's choice, then
// the FSM's entry, which checks it again), and every other burst arrives
// unplaced and is placed by one scheduler pass, as after an outage. It
// prints placement latency p50/p99, placements per second, the process's
// memory, and the raft snapshot's size and the time to write and to load
// it, at the full size and at a small cluster measured in the same run (the
// baseline). It is a benchmark, not a test: it never fails on its figures.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stats"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/scheduler"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func main() {
	var (
		hosts    = flag.Int("hosts", 10000, "simulated hosts")
		restores = flag.Int("restores", 100000, "restores created")
		burst    = flag.Int("burst", 1000, "restores per burst")
		rpsEach  = flag.Int("recovery-points-per-host", 5, "recovery points per host (each held by two hosts)")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of the full-size run to this file")
		heap     = flag.String("memprofile", "", "write a heap profile at the end of the full-size run to this file")
	)
	flag.Parse()
	fmt.Printf("scale benchmark: the FSM, store and scheduler in one process (%s, %d CPUs), bursts of %d\n", runtime.Version(), runtime.NumCPU(), *burst)
	base, err := measure(10, 500, min(*burst, 250), *rpsEach) // 10 hosts hold 640 restores
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-scale:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench-scale:", err)
			os.Exit(1)
		}
	}
	heapProfile = *heap
	full, err := measure(*hosts, *restores, *burst, *rpsEach)
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
	fmt.Println()
	for _, r := range []result{base, full} {
		r.print()
	}
	fmt.Println()
	fmt.Printf("%-34s %12s %12s %8s  %s\n", "measure", "ours", "baseline", "ratio", "target")
	row := func(what string, ours, baseline float64, unit, target string) {
		fmt.Printf("%-34s %10.2f%-2s %10.2f%-2s %7.2fx  %s\n", what, ours, unit, baseline, unit, ours/baseline, target)
		if target != "" {
			goal, verdict, _ := strings.Cut(target, ": ")
			results.Record(results.Row{Bench: "scale", Measure: what + fmt.Sprintf(", %d hosts %d restores", full.hosts, full.restores), Ours: ours, Baseline: baseline,
				BaselineIs: "10 hosts", Unit: unit, Ratio: ours / baseline, Target: goal, Met: verdict == "met"})
		}
	}
	row("placement p50 (API path)", ms(full.apiP50), ms(base.apiP50), "ms", "")
	row("placement p99 (API path)", ms(full.apiP99), ms(base.apiP99), "ms", "<= 5 ms: "+met(full.apiP99 <= 5*time.Millisecond))
	row("placements/s (API path)", full.apiRate, base.apiRate, "/s", ">= 2000/s: "+met(full.apiRate >= 2000))
	row("placements/s (scheduler pass)", full.passRate, base.passRate, "/s", "")
	row("RSS", float64(full.rss)/(1<<20), float64(base.rss)/(1<<20), "Mi", "<= 1 GiB: "+met(full.rss <= 1<<30))
	row("snapshot size", float64(full.snapSize)/(1<<20), float64(base.snapSize)/(1<<20), "Mi", "")
	row("snapshot write", ms(full.snapWrite), ms(base.snapWrite), "ms", "")
	row("snapshot load (a follower)", ms(full.snapLoad), ms(base.snapLoad), "ms", "")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// heapProfile is where the full-size run writes its heap, with the state
// live ("" none).
var heapProfile string

// result is one run's figures.
type result struct {
	hosts, restores, placed int
	apiP50, apiP99          time.Duration
	apiRate, passRate       float64
	passP50, passMax        time.Duration
	rss                     uint64
	snapSize                int
	snapWrite, snapLoad     time.Duration
}

func (r result) print() {
	fmt.Printf("%6d hosts %7d restores: API path p50 %8s p99 %8s, %6.0f placements/s; scheduler pass over a burst p50 %8s max %8s (%6.0f placements/s); RSS %4d MiB; snapshot %4d MiB written in %s, loaded in %s; %d placed\n",
		r.hosts, r.restores, r.apiP50.Round(time.Microsecond), r.apiP99.Round(time.Microsecond), r.apiRate,
		r.passP50.Round(time.Microsecond), r.passMax.Round(time.Microsecond), r.passRate,
		r.rss>>20, r.snapSize>>20, r.snapWrite.Round(time.Millisecond), r.snapLoad.Round(time.Millisecond), r.placed)
}

// cluster is the state machine being driven, entry by entry.
type cluster struct {
	st    *store.Store
	f     *fsm.FSM
	index uint64
	now   time.Time
}

// write applies one command as the next entry and fails on a refusal.
func (c *cluster) write(t raftv1.CommandType, msg proto.Message) (*fsm.Result, error) {
	data, err := fsm.EncodeAs(t, msg, &raftv1.AuditContext{Caller: "bench", Role: "system", ServerId: "s1", Time: timestamppb.New(c.now)})
	if err != nil {
		return nil, err
	}
	c.index++
	res := c.f.ApplyEntry(data, c.index)
	if res.Err != nil {
		return res, fmt.Errorf("%s at %d: %w", t, c.index, res.Err)
	}
	return res, nil
}

func measure(nHosts, nRestores, burst, rpsEach int) (result, error) {
	runtime.GC()
	st, err := store.New()
	if err != nil {
		return result{}, err
	}
	c := &cluster{st: st, f: fsm.New(st, slog.New(slog.NewTextHandler(io.Discard, nil))), now: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	const tenants = 100
	for i := range tenants {
		if _, err := c.write(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: tenant(i)}}); err != nil {
			return result{}, err
		}
	}
	for i := range nHosts {
		h := &restorev1.Host{Id: host(i), Hypervisors: []string{"kvm"}, Accelerator: "kvm", AgentVersion: "bench",
			Capacity: &restorev1.Capacity{Vcpus: 64, MemoryMib: 256 << 10, DiskMib: 4 << 20}, RegisterTime: timestamppb.New(c.now)}
		if _, err := c.write(raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: h}); err != nil {
			return result{}, err
		}
	}
	// Recovery points: each held by two hosts, rpsEach per host on average.
	nRPs := max(nHosts*rpsEach/2, 1)
	held := make([][]*restorev1.RecoveryPoint, nHosts)
	rps := make([]*restorev1.RecoveryPoint, nRPs)
	for j := range nRPs {
		rp := &restorev1.RecoveryPoint{Id: "rp-" + strconv.Itoa(j), Tenant: tenant(j % tenants), Asset: "vm-" + strconv.Itoa(j/3),
			Valid: true, Os: "linux", Firmware: "bios", Disks: []*restorev1.Disk{{Name: "disk0", Format: "qcow2", VirtualSize: 20 << 30}}}
		rps[j] = rp
		a, b := j%nHosts, (j*7+1)%nHosts
		held[a] = append(held[a], rp)
		if b != a {
			held[b] = append(held[b], rp)
		}
	}
	for i, list := range held {
		if _, err := c.write(raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS, &raftv1.ReportRecoveryPoints{HostId: host(i), RecoveryPoints: list}); err != nil {
			return result{}, err
		}
	}

	r := result{hosts: nHosts, restores: nRestores}
	var apiLat, passLat []time.Duration
	var apiTime, passTime time.Duration
	var apiN, passN int
	for made, b := 0, 0; made < nRestores; b++ {
		n := min(burst, nRestores-made)
		viaPass := b%2 == 1
		start := time.Now()
		for k := range n {
			x := newRestore(c, rps[(made+k)*7919%nRPs], made+k)
			t0 := time.Now()
			if !viaPass {
				reader := c.st.Read(nil)
				if err := lifecycle.QuotaAllowsRestore(x.Tenant, reader.Tenant(x.Tenant).GetQuota(), reader.TenantUsage(x.Tenant), x); err != nil {
					return r, err
				}
				x.HostId, _ = scheduler.PlaceOne(reader, x)
			}
			res, err := c.write(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: []byte(x.Id)})
			if err != nil {
				return r, err
			}
			if !viaPass {
				apiLat = append(apiLat, time.Since(t0))
				if res.Value.(*restorev1.Restore).State == lifecycle.Scheduled {
					r.placed++
				}
			}
		}
		if !viaPass {
			apiTime += time.Since(start)
			apiN += n
		} else {
			// The burst arrived unplaced: one scheduler pass places it.
			t0 := time.Now()
			cmd := scheduler.Plan(c.st.Read(nil))
			cmd.Time = timestamppb.New(c.now)
			if _, err := c.write(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, cmd); err != nil {
				return r, err
			}
			d := time.Since(t0)
			passLat = append(passLat, d)
			passTime += d
			passN += len(cmd.Placements)
			r.placed += len(cmd.Placements)
		}
		made += n
	}
	r.apiP50, r.apiP99 = stats.Percentile(apiLat, 50), stats.Percentile(apiLat, 99)
	r.apiRate = float64(apiN) / apiTime.Seconds()
	if len(passLat) > 0 {
		r.passP50, r.passMax = stats.Percentile(passLat, 50), stats.Percentile(passLat, 100)
		r.passRate = float64(passN) / passTime.Seconds()
	}
	r.rss = uint64(stats.RSS("self"))
	if heapProfile != "" && nHosts > 10 {
		if f, err := os.Create(heapProfile); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}

	t0 := time.Now()
	snap, err := c.f.Snapshot()
	if err != nil {
		return r, err
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		return r, err
	}
	r.snapWrite, r.snapSize = time.Since(t0), sink.Len()
	other, _ := store.New()
	t0 = time.Now()
	if err := fsm.New(other, slog.New(slog.NewTextHandler(io.Discard, nil))).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		return r, err
	}
	r.snapLoad = time.Since(t0)
	if r.placed != nRestores {
		return r, fmt.Errorf("%d of %d restores placed: the simulated hosts are too small", r.placed, nRestores)
	}
	return r, nil
}

func newRestore(c *cluster, rp *restorev1.RecoveryPoint, i int) *restorev1.Restore {
	id, _ := uuid.NewV7()
	return lifecycle.NewRestore(lifecycle.NewRestoreSpec{ID: id.String(), RecoveryPoint: rp, Mode: restorev1.Mode_MODE_VIRTUALIZE,
		VCPUs: 1, MemoryMiB: 512, RequestID: "bench-" + strconv.Itoa(i), Now: c.now})
}

func tenant(i int) string { return fmt.Sprintf("t%03d", i) }
func host(i int) string   { return fmt.Sprintf("h-%05d", i) }

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "bench" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }
