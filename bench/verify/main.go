// Command verify is `make bench-verify`: VERIFY runs of the test image on
// real libvirtd and QEMU, N back to back and 4 at once. For each run, the
// time to the verdict is compared with the time to boot: the guest agent
// answers in these runs, so the screen needs only a short settle
// (corroboratedSettle), and what is left is gathering the evidence
// (screenshots, guest facts, checks, report). Target: verdict <= 1.3x the
// time to boot.
//
// It is a benchmark, not a test: it prints figures and ratios and never fails
// on them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stack"
	"github.com/restored/restored/bench/internal/stats"
	"github.com/restored/restored/internal/testimage"
)

func main() {
	runs := flag.Int("runs", 5, "verifications back to back")
	parallel := flag.Int("parallel", 4, "verifications at once")
	settle := flag.Duration("settle", 20*time.Second, "the agent's --screen-settle")
	flag.Parse()
	if err := run(*runs, *parallel, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "bench-verify:", err)
		os.Exit(1)
	}
}

// result is one run. verdict and boot count from the same moment: the agent
// starting the restore (a run queued for capacity does not count its wait);
// request is the whole request → verdict stored, queueing included.
type result struct {
	verdict time.Duration // agent start → verdict (the verification's end)
	boot    time.Duration // agent start → boot signal (time_to_boot_ms)
	request time.Duration // request → verdict stored
}

func run(runs, parallel int, settle time.Duration) error {
	ctx := context.Background()
	img, err := testimage.Path(".")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	st, err := stack.Start(ctx, dir, []stack.RecoveryPoint{{ID: "rp-image", From: img}}, "--screen-settle", settle.String())
	if err != nil {
		return err
	}
	defer st.Stop()
	restores := restorev1.NewRestoreServiceClient(st.Server.Conn())
	verifications := restorev1.NewVerificationServiceClient(st.Server.Conn())
	seq := 0
	var (
		mu  sync.Mutex
		ids []string // every run, to check its teardown at the end
	)
	verify := func(n int) (result, error) {
		start := time.Now()
		created, err := restores.CreateRestore(st.Partner, &restorev1.CreateRestoreRequest{
			RecoveryPointId: "rp-image", Mode: restorev1.Mode_MODE_VERIFY, MemoryMib: 128, RequestId: fmt.Sprintf("bench-verify-%d", n),
			Verify: &restorev1.VerifyOptions{Filesystems: []string{"/"}, AppChecks: []*restorev1.AppCheck{{Name: "shell", Path: "/bin/true"}}},
		})
		if err != nil {
			return result{}, err
		}
		id := created.Restore.Id
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			v, err := verifications.GetVerification(st.Partner, &restorev1.GetVerificationRequest{Id: id})
			if err != nil {
				continue // not reported yet
			}
			took := time.Since(start)
			if v.Verification.Verdict != restorev1.Verdict_VERDICT_PASSED {
				return result{}, fmt.Errorf("verification %s: %s: %s", id, v.Verification.Verdict, v.Verification.Reason)
			}
			vv := v.Verification
			return result{verdict: vv.EndTime.AsTime().Sub(vv.StartTime.AsTime()), boot: time.Duration(vv.TimeToBootMs) * time.Millisecond, request: took}, nil
		}
		return result{}, fmt.Errorf("verification %s took over 10 minutes", id)
	}

	fmt.Printf("verification benchmark: restored + hypervisor-agent, TCG, test image, checks: screen, guest agent, filesystems, one application check; settling period %s\n\n", settle)
	var serial []result
	for i := 0; i < runs; i++ {
		seq++
		r, err := verify(seq)
		if err != nil {
			return err
		}
		serial = append(serial, r)
		fmt.Printf("  back to back %d/%d: verdict %s, boot %s, ratio %.2fx (request to verdict %s)\n", i+1, runs, r.verdict.Round(time.Millisecond),
			r.boot.Round(time.Millisecond), ratio(r, settle), r.request.Round(time.Millisecond))
	}
	var (
		wg   sync.WaitGroup
		errs []error
		at   []result
	)
	start := time.Now()
	for i := 0; i < parallel; i++ {
		seq++
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			r, err := verify(n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			at = append(at, r)
		}(seq)
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	wall := time.Since(start)
	for i, r := range at {
		fmt.Printf("  %d at once, run %d: verdict %s, boot %s, ratio %.2fx (request to verdict %s)\n", parallel, i+1, r.verdict.Round(time.Millisecond),
			r.boot.Round(time.Millisecond), ratio(r, settle), r.request.Round(time.Millisecond))
	}
	fmt.Println()
	row := func(name string, rs []result) {
		fmt.Printf("%-16s runs %d  verdict p50 %8s  boot p50 %8s  verdict / boot p50 %.2fx  max %.2fx  (target <= 1.3x: the guest agent answers)\n",
			name, len(rs), median(rs, func(r result) time.Duration { return r.verdict }).Round(time.Millisecond),
			median(rs, func(r result) time.Duration { return r.boot }).Round(time.Millisecond), medianRatio(rs, settle), maxRatio(rs, settle))
		v, b := median(rs, func(r result) time.Duration { return r.verdict }), median(rs, func(r result) time.Duration { return r.boot })
		results.Record(results.Row{Bench: "verify", Measure: "verdict, " + name, Ours: float64(v) / 1e6, Baseline: float64(b) / 1e6, BaselineIs: "the boot",
			Unit: "ms", Ratio: medianRatio(rs, settle), Target: "<= 1.30x", Met: medianRatio(rs, settle) <= 1.3})
	}
	row("back to back", serial)
	row(fmt.Sprintf("%d at once", parallel), at)
	fmt.Printf("%-16s %d verdicts in %s wall time (%.1f verifications per hour on this host; runs beyond its vCPU capacity wait in PENDING)\n",
		"throughput", parallel, wall.Round(time.Second), float64(parallel)/wall.Hours())
	// A verdict comes before its run's teardown: wait for those, then
	// check that nothing is left.
	if err := st.AwaitTornDown(ids, 2*time.Minute); err != nil {
		return err
	}
	if err := st.LeftNothing(ctx); err != nil {
		return err
	}
	fmt.Println("left nothing behind: every run torn down, no domain defined, no restore dir")
	return nil
}

// ratio is a run's verdict time over its time to boot: with the guest
// agent answering, the screen needs only a short settle (target <= 1.3x).
func ratio(r result, _ time.Duration) float64 {
	return float64(r.verdict) / float64(r.boot)
}

func median(rs []result, f func(result) time.Duration) time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = f(r)
	}
	return stats.Median(ds)
}

func medianRatio(rs []result, settle time.Duration) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = ratio(r, settle)
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func maxRatio(rs []result, settle time.Duration) float64 {
	m := 0.0
	for _, r := range rs {
		m = max(m, ratio(r, settle))
	}
	return m
}
