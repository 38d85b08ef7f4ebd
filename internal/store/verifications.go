package store

import (
	"sort"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Verification returns a verification or nil.
func (r *Reader) Verification(id string) *restorev1.Verification {
	v, _ := r.first(TableVerifications, "id", id).(*restorev1.Verification)
	return v
}

// Verifications returns verifications newest first (ids are time-ordered
// UUIDv7). An empty tenant means every tenant.
func (r *Reader) Verifications(tenant string) []*restorev1.Verification {
	var objs []any
	if tenant == "" {
		objs = r.all(TableVerifications, "id")
	} else {
		objs = r.all(TableVerifications, "tenant", tenant)
	}
	out := make([]*restorev1.Verification, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.Verification))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id > out[j].Id })
	return out
}

// VerificationPolicy returns a policy ("<tenant>/<asset>") or nil.
func (r *Reader) VerificationPolicy(id string) *restorev1.VerificationPolicy {
	p, _ := r.first(TableVerificationPolicies, "id", id).(*restorev1.VerificationPolicy)
	return p
}

// VerificationPolicies returns policies ordered by id. An empty tenant means
// every tenant.
func (r *Reader) VerificationPolicies(tenant string) []*restorev1.VerificationPolicy {
	var objs []any
	if tenant == "" {
		objs = r.all(TableVerificationPolicies, "id")
	} else {
		objs = r.all(TableVerificationPolicies, "tenant", tenant)
	}
	out := make([]*restorev1.VerificationPolicy, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*restorev1.VerificationPolicy))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}
