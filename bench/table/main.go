// Command table is `make bench`: it runs every benchmark in turn (raft,
// scale, agents, restore, verify, snapshot, export: each its own `make
// bench-…`, output shown as it goes), collects the headline figures each
// records (bench/internal/results), and prints one table: measure, ours,
// the baseline measured in the same run, the ratio, the target and whether
// it is met, dated. A benchmark that fails is named under the table and
// the others still run. It is a benchmark, not a test: its exit status
// says only whether every benchmark ran.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/restored/restored/bench/internal/results"
)

var all = []string{"raft", "scale", "agents", "restore", "verify", "snapshot", "export"}

func main() {
	only := flag.String("only", "", "comma-separated benchmarks to run (default: all of "+strings.Join(all, ",")+")")
	flag.Parse()
	names := all
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	dir, err := os.MkdirTemp("", "restored-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "results.jsonl")
	start := time.Now()
	var failed []string
	took := map[string]time.Duration{}
	for _, name := range names {
		fmt.Printf("\n==> make bench-%s\n", name)
		t0 := time.Now()
		cmd := exec.Command("make", "--no-print-directory", "bench-"+name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), results.Env+"="+out)
		if err := cmd.Run(); err != nil {
			failed = append(failed, fmt.Sprintf("bench-%s: %v", name, err))
		}
		took[name] = time.Since(t0).Round(time.Second)
	}
	rows, err := read(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	host, _ := os.Hostname()
	fmt.Printf("\nRestored benchmarks, %s, on %s (%d CPUs, %s), %s in all\n\n", time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), runtime.Version(), time.Since(start).Round(time.Second))
	fmt.Printf("%-9s %-56s %14s %14s  %-28s %8s  %-14s %s\n", "bench", "measure", "ours", "baseline", "(baseline is)", "ratio", "target", "met")
	met := 0
	for _, r := range rows {
		verdict := "NOT met"
		if r.Met {
			verdict, met = "met", met+1
		}
		fmt.Printf("%-9s %-56s %14s %14s  %-28s %7.2fx  %-14s %s\n", r.Bench, r.Measure, figure(r.Ours, r.Unit), figure(r.Baseline, r.Unit), "("+r.BaselineIs+")", r.Ratio, r.Target, verdict)
	}
	fmt.Printf("\n%d of %d targets met.", met, len(rows))
	for _, name := range names {
		fmt.Printf(" bench-%s %s.", name, took[name])
	}
	fmt.Println()
	if len(failed) > 0 {
		fmt.Println("\nThese benchmarks failed (their figures are missing above):")
		for _, f := range failed {
			fmt.Println("  " + f)
		}
		os.Exit(1)
	}
}

func figure(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func read(path string) ([]results.Row, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []results.Row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r results.Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}
