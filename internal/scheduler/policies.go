package scheduler

import (
	"sort"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
)

// PolicyRequestPrefix starts the request_id of a policy's VERIFY restore:
// "policy-<recovery point id>", so a recovery point is verified by policy
// at most once (the tenant's idempotency keys see to it).
const PolicyRequestPrefix = "policy-"

// PolicyRuns decides which VERIFY restores the verification policies start
// now (without ids). For each asset with a policy (its own, else its
// tenant's "*"), the newest valid recovery point is verified when:
//   - it was never verified (by a policy or by hand) and no run of it is
//     under way,
//   - the policy's interval has passed since its last run for the asset,
//   - a host that holds it is READY, undrained, has room and runs fewer than
//     max_per_host policy runs; the least busy such host is hinted, and
//     assets held by fewer hosts choose first.
func PolicyRuns(r *store.Reader, now time.Time) []*restorev1.Restore {
	// Newest valid recovery point per tenant/asset.
	newest := map[string]*restorev1.RecoveryPoint{}
	for _, rp := range r.RecoveryPoints("") {
		if !rp.Valid {
			continue
		}
		k := rp.Tenant + "/" + rp.Asset
		if cur := newest[k]; cur == nil || later(rp, cur) {
			newest[k] = rp
		}
	}
	if len(newest) == 0 {
		return nil
	}
	verified := map[string]bool{}
	for _, v := range r.Verifications("") {
		verified[v.RecoveryPointId] = true
	}
	running := map[string]int{}       // host → active policy runs
	underway := map[string]bool{}     // recovery point → a VERIFY run is active
	lastRun := map[string]time.Time{} // policy id + asset → last run
	requested := map[string]bool{}    // tenant/request id of policy runs
	for _, x := range r.Restores("") {
		if x.Mode != restorev1.Mode_MODE_VERIFY {
			continue
		}
		if !lifecycle.Terminal(x.State) {
			underway[x.RecoveryPointId] = true
			if x.PolicyId != "" && x.HostId != "" {
				running[x.HostId]++
			}
		}
		if x.PolicyId != "" {
			k := x.PolicyId + "|" + x.Asset
			if t := x.CreateTime.AsTime(); t.After(lastRun[k]) {
				lastRun[k] = t
			}
			requested[x.Tenant+"/"+x.RequestId] = true
		}
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	// The most constrained first: an asset held by one host gets it before
	// an asset that could run elsewhere.
	sort.Slice(keys, func(i, j int) bool {
		hi, hj := len(newest[keys[i]].HostIds), len(newest[keys[j]].HostIds)
		if hi != hj {
			return hi < hj
		}
		return keys[i] < keys[j]
	})
	var out []*restorev1.Restore
	for _, k := range keys {
		rp := newest[k]
		p := r.VerificationPolicy(k)
		if p == nil {
			p = r.VerificationPolicy(rp.Tenant + "/*")
		}
		if p == nil || verified[rp.Id] || underway[rp.Id] || requested[rp.Tenant+"/"+PolicyRequestPrefix+rp.Id] {
			continue
		}
		if last, ok := lastRun[p.Id+"|"+rp.Asset]; ok && now.Sub(last) < time.Duration(p.IntervalSeconds)*time.Second {
			continue
		}
		limit := int(p.MaxPerHost)
		if limit <= 0 {
			limit = 1
		}
		x := lifecycle.NewRestore(lifecycle.NewRestoreSpec{
			RecoveryPoint: rp, Mode: restorev1.Mode_MODE_VERIFY, MemoryMiB: p.MemoryMib,
			RequestID: PolicyRequestPrefix + rp.Id, Verify: p.Verify, PolicyID: p.Id,
			Reason: "started by verification policy " + p.Id, Now: now,
		})
		host := leastBusy(r, rp, x, running, limit)
		if host == "" {
			continue // every holder is at its limit or full: next pass
		}
		x.HostId = host
		running[host]++
		out = append(out, x)
	}
	return out
}

// later orders recovery points by creation time, then id.
func later(a, b *restorev1.RecoveryPoint) bool {
	at, bt := a.CreateTime.AsTime(), b.CreateTime.AsTime()
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return a.Id > b.Id
}

// leastBusy is the usable holder of rp with the fewest policy runs under
// limit and room for x ("" when none).
func leastBusy(r *store.Reader, rp *restorev1.RecoveryPoint, x *restorev1.Restore, running map[string]int, limit int) string {
	best := ""
	for _, id := range rp.HostIds {
		if running[id] >= limit || lifecycle.Fit(r.Host(id), r.Allocated(id), rp, x) != lifecycle.Fits {
			continue
		}
		if best == "" || running[id] < running[best] || (running[id] == running[best] && id < best) {
			best = id
		}
	}
	return best
}

// pruneBatch bounds one prune command.
const pruneBatch = 500

// ExpiredVerifications lists verifications that ended more than retention
// ago (at most pruneBatch); retention 0 keeps everything.
func ExpiredVerifications(r *store.Reader, now time.Time, retention time.Duration) []string {
	if retention <= 0 {
		return nil
	}
	var ids []string
	for _, v := range r.Verifications("") {
		if v.EndTime != nil && now.Sub(v.EndTime.AsTime()) > retention {
			ids = append(ids, v.Id)
			if len(ids) == pruneBatch {
				break
			}
		}
	}
	return ids
}
