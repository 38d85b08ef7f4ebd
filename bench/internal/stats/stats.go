// Package stats holds the figures the benchmarks print.
package stats

import (
	"slices"
	"time"
)

// Median is the middle of ds (the upper middle for an even count).
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
