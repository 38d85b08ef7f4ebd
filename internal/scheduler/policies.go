package scheduler

import (
	"sort"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
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
	// Each asset's policy: its own, else its tenant's "*".
	policyOf := map[string]*restorev1.VerificationPolicy{}
	var tenantWide []*restorev1.VerificationPolicy
	for _, p := range r.VerificationPolicies("") {
		if p.Asset == "*" {
			tenantWide = append(tenantWide, p)
		} else {
			policyOf[p.Tenant+"/"+p.Asset] = p
		}
	}
	// The newest valid recovery point of each asset with a policy, read
	// through the asset index (a tenant-wide policy reads its tenant's).
	newest := map[string]*restorev1.RecoveryPoint{}
	consider := func(rp *restorev1.RecoveryPoint) {
		k := rp.Tenant + "/" + rp.Asset
		if rp.Valid && (newest[k] == nil || later(rp, newest[k])) {
			newest[k] = rp
		}
	}
	for _, p := range policyOf {
		for _, rp := range r.RecoveryPointsOfAsset(p.Tenant, p.Asset) {
			consider(rp)
		}
	}
	for _, p := range tenantWide {
		for _, rp := range r.RecoveryPoints(p.Tenant) {
			k := rp.Tenant + "/" + rp.Asset
			if _, own := policyOf[k]; !own {
				policyOf[k] = p
				consider(rp)
			} else if policyOf[k] == p {
				consider(rp)
			}
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
	running := map[string]int{}                 // host → active policy runs, counted once
	used := map[string]*restorev1.TenantUsage{} // tenant → its usage with this pass's runs
	var out []*restorev1.Restore
	for _, k := range keys {
		rp, p := newest[k], policyOf[k]
		if r.Verified(rp.Id) || underway(r, rp.Id) || r.IdempotencyKey(fsm.IdempotencyKindRestore, rp.Tenant, PolicyRequestPrefix+rp.Id) != nil {
			continue
		}
		if last := r.LastPolicyRun(p.Id, rp.Asset); last != nil && now.Sub(last.CreateTime.AsTime()) < time.Duration(p.IntervalSeconds)*time.Second {
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
		u := used[rp.Tenant]
		if u == nil {
			u = r.TenantUsage(rp.Tenant)
			used[rp.Tenant] = u
		}
		if t := r.Tenant(rp.Tenant); t != nil && lifecycle.QuotaAllowsRestore(rp.Tenant, t.Quota, u, x) != nil {
			continue // the tenant's quota is full: a later pass
		}
		host := leastBusy(r, rp, x, running, limit)
		if host == "" {
			continue // every holder is at its limit or full: next pass
		}
		x.HostId = host
		running[host]++
		lifecycle.AddToUsage(u, x)
		out = append(out, x)
	}
	return out
}

// underway says whether a VERIFY run of a recovery point has not ended.
func underway(r *store.Reader, rpID string) bool {
	for _, x := range r.RestoresOfRecoveryPoint(rpID) {
		if x.Mode == restorev1.Mode_MODE_VERIFY && !lifecycle.Terminal(x.State) {
			return true
		}
	}
	return false
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
		if _, counted := running[id]; !counted {
			running[id] = r.ActivePolicyRuns(id)
		}
		if running[id] >= limit || lifecycle.Fit(r.Host(id), r.Allocated(id), rp, x, "") != lifecycle.Fits {
			continue
		}
		if best == "" || running[id] < running[best] || (running[id] == running[best] && id < best) {
			best = id
		}
	}
	return best
}
