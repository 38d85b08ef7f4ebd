package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stack"
	"github.com/restored/restored/bench/internal/stats"
)

// fileRuns is how many warm listings are timed (the median is shown).
const fileRuns = 9

// bigSparse makes a 1 TiB sparse raw disk whose first bytes are the test
// image (its partitions, so /etc is where it is on the image).
func bigSparse(img, dir string) (string, error) {
	big := filepath.Join(dir, "sparse-1tib.raw")
	if out, err := exec.Command("cp", "--sparse=always", img, big).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp: %v %s", err, out)
	}
	return big, os.Truncate(big, 1<<40)
}

// listEtc times listing /disk0/part2/etc of a recovery point through the
// API: the first listing (its disks served, the reader started) and the
// median of the warm ones; it returns the names.
func listEtc(st *stack.Stack, rp string) (first, warm time.Duration, names []string, err error) {
	client := restorev1.NewRecoveryPointServiceClient(st.Server.Conn())
	var runs []time.Duration
	for i := 0; i <= fileRuns; i++ {
		start := time.Now()
		resp, err := client.ListRecoveryPointFiles(st.Partner, &restorev1.ListRecoveryPointFilesRequest{Id: rp, Path: "/disk0/part2/etc"})
		if err != nil {
			return 0, 0, nil, fmt.Errorf("list /etc of %s: %w", rp, err)
		}
		d := time.Since(start)
		if i == 0 {
			first = d
			for _, e := range resp.Entries {
				names = append(names, e.Name)
			}
			continue
		}
		runs = append(runs, d)
	}
	return first, stats.Median(runs), names, nil
}

// virtLs times libguestfs's virt-ls listing /etc of the same disk (its
// appliance is built by a first, untimed run, which also finds whether
// the appliance can use KVM here or runs under TCG, as this host's
// restores may); it returns the names.
func virtLs(disk string) (time.Duration, []string, error) {
	env := append(os.Environ(), "LIBGUESTFS_BACKEND=direct")
	run := func() (time.Duration, string, error) {
		cmd := exec.Command("virt-ls", "--format=raw", "-a", disk, "-m", "/dev/sda2", "/etc")
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, "", fmt.Errorf("virt-ls: %v %s", err, lastLines(string(out), 3))
		}
		return time.Since(start), string(out), nil
	}
	if _, _, err := run(); err != nil { // builds and caches the appliance
		env = append(env, "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
		if _, _, err2 := run(); err2 != nil {
			return 0, nil, fmt.Errorf("%v; under TCG too: %v", err, err2)
		}
		fmt.Println("  (virt-ls's appliance cannot use KVM on this host: it runs under TCG, as the agent's restores do here)")
	}
	var runs []time.Duration
	var out string
	for range 3 {
		d, o, err := run()
		if err != nil {
			return 0, nil, err
		}
		runs, out = append(runs, d), o
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return stats.Median(runs), names, nil
}

// fileListing is the file-level restore part: ours against virt-ls on the
// test image and on a 1 TiB sparse disk.
func fileListing(st *stack.Stack, dir string) error {
	for _, c := range []struct{ rp, label string }{{"rp-image", "the test image (64 MiB)"}, {"rp-1tib", "a 1 TiB sparse disk"}} {
		disk := filepath.Join(dir, "repo", "bench", "a", c.rp, "disk0.raw")
		first, warm, ours, err := listEtc(st, c.rp)
		if err != nil {
			return err
		}
		theirs, names, err := virtLs(disk)
		if err != nil {
			return err
		}
		same := "the same names"
		if !slices.Equal(ours, names) {
			same = fmt.Sprintf("DIFFERENT names: ours %v, virt-ls %v", ours, names)
		}
		fmt.Printf("list /etc of %s (%d entries, %s)\n", c.label, len(ours), same)
		fmt.Printf("  %-50s %8.1f ms\n", "ours, first (disks served, reader started)", ms(first))
		fmt.Printf("  %-50s %8.1f ms  (median of %d)\n", "ours, warm (gRPC → server → agent → confined reader)", ms(warm), fileRuns)
		fmt.Printf("  %-50s %8.1f ms  (median of 3, appliance cached)\n", "virt-ls (libguestfs appliance)", ms(theirs))
		fmt.Printf("  %-50s %8.1fx first, %.1fx warm   (target >= 10x)\n\n", "ratio", theirs.Seconds()/first.Seconds(), theirs.Seconds()/warm.Seconds())
		results.Record(results.Row{Bench: "export", Measure: "file listing (first), " + c.label, Ours: ms(first), Baseline: ms(theirs), BaselineIs: "virt-ls",
			Unit: "ms", Ratio: theirs.Seconds() / first.Seconds(), Target: ">= 10x faster", Met: theirs.Seconds()/first.Seconds() >= 10})
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
