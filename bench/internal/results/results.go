// Package results collects the benchmarks' headline figures for `make
// bench`'s table: each benchmark records its measures (ours, the baseline
// measured in the same run, the target, met or not) as JSON lines into the
// file named by $RESTORED_BENCH_RESULTS; run alone, it records nothing.
package results

import (
	"encoding/json"
	"fmt"
	"os"
)

// Env names the file the results are appended to.
const Env = "RESTORED_BENCH_RESULTS"

// Row is one measure.
type Row struct {
	Bench    string  `json:"bench"`
	Measure  string  `json:"measure"`
	Ours     float64 `json:"ours"`
	Baseline float64 `json:"baseline"`
	// BaselineIs says what the baseline is ("raw virsh create", "1 agent").
	BaselineIs string `json:"baseline_is"`
	Unit       string `json:"unit"`
	// Ratio is ours against the baseline as the target reads it.
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

// Record appends r when the benchmark runs under `make bench`.
func Record(r Row) {
	path := os.Getenv(Env)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench results:", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(r)
	fmt.Fprintln(f, string(b))
}
