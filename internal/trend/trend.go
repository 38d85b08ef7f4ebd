// Package trend turns an asset's verifications into numbers: the last
// verdict, the pass rate and the time to boot (the real RTO) p50/p95, and
// whether the newest run is much slower than the ones before it.
package trend

import (
	"sort"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// DefaultLastN is how many runs a trend covers by default.
const DefaultLastN = 20

// Compute summarises vs (newest first, one asset) over the newest lastN.
func Compute(tenant, asset string, vs []*restorev1.Verification, lastN int) *restorev1.VerificationTrend {
	if lastN <= 0 {
		lastN = DefaultLastN
	}
	if len(vs) > lastN {
		vs = vs[:lastN]
	}
	t := &restorev1.VerificationTrend{Tenant: tenant, Asset: asset, Runs: int32(len(vs))}
	if len(vs) == 0 {
		return t
	}
	newest := vs[0]
	t.LastVerdict, t.LastVerificationId, t.LastTime, t.LastTimeToBootMs = newest.Verdict, newest.Id, newest.EndTime, newest.TimeToBootMs
	passed := 0
	var boots []int64
	for _, v := range vs {
		if v.Verdict == restorev1.Verdict_VERDICT_PASSED {
			passed++
		}
		if v.TimeToBootMs > 0 {
			boots = append(boots, v.TimeToBootMs)
		}
	}
	t.PassRate = float64(passed) / float64(len(vs))
	t.TimeToBootP50Ms, t.TimeToBootP95Ms = percentile(boots, 50), percentile(boots, 95)
	// Slower: the newest boot against the runs before it.
	var before []int64
	for _, v := range vs[1:] {
		if v.TimeToBootMs > 0 {
			before = append(before, v.TimeToBootMs)
		}
	}
	if newest.TimeToBootMs > 0 && len(before) >= 3 {
		p50, p95 := percentile(before, 50), percentile(before, 95)
		t.Slower = float64(newest.TimeToBootMs) > 1.5*float64(p50) && newest.TimeToBootMs > p95
	}
	return t
}

// percentile is the nearest-rank percentile of xs (0 when empty).
func percentile(xs []int64, p int) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}
