package lifecycle

import (
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// CountsTowardQuota says whether a restore holds part of its tenant's
// quota: every restore not yet ended, queued ones too (else a burst of
// PENDING restores would pass the quota and be placed later).
func CountsTowardQuota(x *restorev1.Restore) bool { return !Terminal(x.State) }

// SnapshotCountsTowardQuota: a snapshot not yet RELEASED or FAILED.
func SnapshotCountsTowardQuota(s *restorev1.Snapshot) bool { return !SnapshotDone(s) }

// AddToUsage counts restore x into u.
func AddToUsage(u *restorev1.TenantUsage, x *restorev1.Restore) {
	u.Restores++
	u.Vcpus += x.Vcpus
	u.MemoryMib += x.MemoryMib
}

// QuotaExceeded is a create refused by its tenant's quota: which limit,
// what it allows and what the tenant holds. It is a RESOURCE_EXHAUSTED
// status (HTTP 429) wherever it is returned.
type QuotaExceeded struct {
	Tenant   string
	Resource string
	Limit    int64
	Used     int64
	Asked    int64
}

func (e *QuotaExceeded) Error() string {
	return fmt.Sprintf("tenant %s's quota allows %d %s at once; it holds %d and this asks for %d more: end a restore or snapshot, or ask an admin to raise the quota",
		e.Tenant, e.Limit, e.Resource, e.Used, e.Asked)
}

// GRPCStatus makes the error a RESOURCE_EXHAUSTED status.
func (e *QuotaExceeded) GRPCStatus() *status.Status {
	return status.New(codes.ResourceExhausted, e.Error())
}

// QuotaAllowsRestore checks a new restore against its tenant's quota and
// what the tenant holds (nil quota: no limits).
func QuotaAllowsRestore(tenant string, q *restorev1.TenantQuota, u *restorev1.TenantUsage, x *restorev1.Restore) error {
	for _, c := range []struct {
		resource           string
		limit, used, asked int64
	}{
		{"restores", int64(q.GetMaxRestores()), int64(u.GetRestores()), 1},
		{"vCPUs", int64(q.GetMaxVcpus()), int64(u.GetVcpus()), int64(x.Vcpus)},
		{"MiB of memory", q.GetMaxMemoryMib(), u.GetMemoryMib(), x.MemoryMib},
	} {
		if c.limit > 0 && c.used+c.asked > c.limit {
			return &QuotaExceeded{Tenant: tenant, Resource: c.resource, Limit: c.limit, Used: c.used, Asked: c.asked}
		}
	}
	return nil
}

// QuotaAllowsSnapshot checks a new snapshot against its tenant's quota.
func QuotaAllowsSnapshot(tenant string, q *restorev1.TenantQuota, u *restorev1.TenantUsage) error {
	if limit := int64(q.GetMaxSnapshots()); limit > 0 && int64(u.GetSnapshots())+1 > limit {
		return &QuotaExceeded{Tenant: tenant, Resource: "snapshots", Limit: limit, Used: int64(u.GetSnapshots()), Asked: 1}
	}
	return nil
}

// BatchQuota checks the restores of one batch against their tenants'
// quotas, each counting the batch's restores before it: the API before
// raft and the FSM again ask it, so both count a batch the same way.
type BatchQuota struct {
	usage map[string]*restorev1.TenantUsage
}

// Allow checks x against quota q, its tenant's usage being current
// (asked once per tenant) plus the batch's restores allowed before it,
// and counts x in.
func (b *BatchQuota) Allow(q *restorev1.TenantQuota, current func() *restorev1.TenantUsage, x *restorev1.Restore) error {
	if b.usage == nil {
		b.usage = map[string]*restorev1.TenantUsage{}
	}
	u, ok := b.usage[x.Tenant]
	if !ok {
		u = &restorev1.TenantUsage{}
		if c := current(); c != nil {
			u = proto.Clone(c).(*restorev1.TenantUsage)
		}
		b.usage[x.Tenant] = u
	}
	if err := QuotaAllowsRestore(x.Tenant, q, u, x); err != nil {
		return err
	}
	AddToUsage(u, x)
	return nil
}
