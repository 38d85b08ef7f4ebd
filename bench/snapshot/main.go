// Command snapshot is `make bench-snapshot`: backup jobs against a real
// guest on libvirtd and QEMU.
//
//   - P9: after a FULL, the guest changes 1 %, 10 % and 50 % of a 256 MiB
//     data disk (scattered 256 KiB runs); each INCREMENTAL's bytes read are
//     compared with the bytes the guest wrote. Target <= 1.1.
//   - P10: the guest's I/O pause in a quiesced snapshot (freeze asked →
//     thaw answered), median and max over the runs, against a bare
//     freeze + thaw through the same guest agent measured in the same run.
//     Target <= 200 ms.
//
// It is a benchmark, not a test: it prints figures and ratios and never
// fails on them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stack"
	"github.com/restored/restored/bench/internal/stats"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/progressbar"
	"github.com/restored/restored/internal/testguest"
	"github.com/restored/restored/internal/testimage"
)

const dataDisk = 256 << 20

func main() {
	runs := flag.Int("runs", 5, "quiesced snapshots for P10")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench-snapshot:", err)
		os.Exit(1)
	}
}

func run(runs int) error {
	ctx := context.Background()
	img, err := testimage.Path(".")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	st, err := stack.Start(ctx, dir, nil)
	if err != nil {
		return err
	}
	defer st.Stop()
	drv := kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer drv.Close()
	gctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	g, err := testguest.Start(gctx, drv, img, dir, dataDisk)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_ = drv.EndBackup(cctx, stack.HostID, g.Name)
		_ = g.Close(cctx)
	}()
	conn := st.Server.Conn()
	guests := restorev1.NewGuestServiceClient(conn)
	snaps := restorev1.NewSnapshotServiceClient(conn)
	reg, err := st.AssignGuest(ctx, g.Name)
	if err != nil {
		return err
	}
	job := backupjob.Config{Snapshots: snaps, Guests: guests, GuestID: reg.Id, Repository: filepath.Join(dir, "repo")}
	fmt.Printf("guest %s: test image on vda, %d MiB data disk on vdb, TCG\n\n", g.Name, dataDisk>>20)

	full, err := backupjob.Run(st.Partner, job)
	if err != nil {
		return err
	}
	prev := full.Dir
	fmt.Printf("FULL: read %s of a %s guest in %s\n\n", progressbar.Bytes(full.BytesRead), progressbar.Bytes(full.DiskBytes), full.Duration.Round(time.Millisecond))

	fmt.Println("P9  incremental: bytes read / bytes the guest changed (64 KiB blocks that differ between the two recovery points; target <= 1.10)")
	runBlocks := 4 // 256 KiB runs
	slots := dataDisk / testguest.Block / runBlocks
	job.Incremental = true
	for _, pct := range []int{1, 10, 50} {
		n := slots * pct / 100
		picked := rand.Perm(slots)[:n]
		sort.Ints(picked)
		var script strings.Builder
		for _, slot := range picked {
			fmt.Fprintf(&script, "dd if=/dev/urandom of=/dev/vdb bs=%d seek=%d count=%d conv=notrunc 2>/dev/null; ", testguest.Block, slot*runBlocks, runBlocks)
		}
		script.WriteString("sync")
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		_, err := g.Sh(wctx, script.String())
		cancel()
		if err != nil {
			return err
		}
		written := int64(n * runBlocks * testguest.Block)
		inc, err := backupjob.Run(st.Partner, job)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		blocks, err := testguest.ChangedBlocks(cctx, prev, inc.Dir, "vda", "vdb")
		cancel()
		if err != nil {
			return err
		}
		changed := int64(blocks["vda"]+blocks["vdb"]) * testguest.Block
		fmt.Printf("P9  %2d %% of vdb   %-11s read %10s for %10s changed   ratio %.3fx   (the guest wrote %s to vdb; vda changed %d blocks; %s)\n", pct, inc.Kind,
			progressbar.Bytes(inc.BytesRead), progressbar.Bytes(changed), float64(inc.BytesRead)/float64(changed), progressbar.Bytes(written), blocks["vda"], inc.Duration.Round(time.Millisecond))
		ratio := float64(inc.BytesRead) / float64(changed)
		results.Record(results.Row{Bench: "snapshot", Measure: fmt.Sprintf("P9 incremental read, %d %% of vdb changed", pct), Ours: float64(inc.BytesRead) / (1 << 20),
			Baseline: float64(changed) / (1 << 20), BaselineIs: "bytes changed", Unit: "MiB", Ratio: ratio, Target: "<= 1.10x", Met: ratio <= 1.10})
		prev = inc.Dir
	}

	fmt.Printf("\nP10 quiesced snapshot: the guest's I/O pause (freeze asked -> thaw answered), %d runs (target <= 200 ms)\n", runs)
	var paused, bare []time.Duration
	for i := 0; i < runs; i++ {
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		d, err := drv.FreezeThaw(fctx, g.Name)
		cancel()
		if err != nil {
			return fmt.Errorf("bare freeze/thaw: %w", err)
		}
		bare = append(bare, d)
		s, err := snaps.CreateSnapshot(st.Partner, &restorev1.CreateSnapshotRequest{GuestId: reg.Id, Quiesce: true, LeaseSeconds: 600})
		if err != nil {
			return err
		}
		ready, err := wait(st, snaps, s.Snapshot.Id, restorev1.SnapshotState_SNAPSHOT_STATE_REQUESTED, restorev1.SnapshotState_SNAPSHOT_STATE_READY)
		if err != nil {
			return err
		}
		if ready.Consistency != restorev1.Consistency_CONSISTENCY_QUIESCED {
			return fmt.Errorf("snapshot %s is %s: %s", ready.Id, ready.Consistency, ready.ConsistencyReason)
		}
		paused = append(paused, time.Duration(ready.FrozenMs)*time.Millisecond)
		if _, err := snaps.DeleteSnapshot(st.Partner, &restorev1.DeleteSnapshotRequest{Id: ready.Id}); err != nil {
			return err
		}
		if _, err := wait(st, snaps, ready.Id, restorev1.SnapshotState_SNAPSHOT_STATE_READY, restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED); err != nil {
			return err
		}
	}
	pm, px, bm := stats.Median(paused), slices.Max(paused), stats.Median(bare)
	fmt.Printf("P10 snapshot pause   median %6s  max %6s   vs bare freeze+thaw median %6s   ratio %.2fx\n",
		pm.Round(time.Millisecond), px.Round(time.Millisecond), bm.Round(time.Millisecond), float64(pm)/float64(bm))
	results.Record(results.Row{Bench: "snapshot", Measure: "P10 quiesced snapshot pause, median", Ours: float64(pm) / 1e6, Baseline: float64(bm) / 1e6,
		BaselineIs: "bare freeze+thaw", Unit: "ms", Ratio: float64(pm) / float64(bm), Target: "<= 1.50x", Met: float64(pm) <= 1.5*float64(bm)})
	return nil
}

// wait waits (at most 2 minutes) until the snapshot moves from from to want.
func wait(st *stack.Stack, snaps restorev1.SnapshotServiceClient, id string, from, want restorev1.SnapshotState) (*restorev1.Snapshot, error) {
	ctx, cancel := context.WithTimeout(st.Partner, 2*time.Minute)
	defer cancel()
	return backupjob.Wait(ctx, snaps, id, from, want, nil)
}
