package store

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/protobuf/proto"
)

// TenantUsage is what a tenant's restores and snapshots hold now, read
// from the restores and snapshots that count toward its quota (only
// those: a tenant's ended restores are never walked).
func (r *Reader) TenantUsage(tenant string) *restorev1.TenantUsage {
	u := &restorev1.TenantUsage{}
	for _, o := range r.all(TableRestores, indexQuota, tenant) {
		lifecycle.AddToUsage(u, o.(*restorev1.Restore))
	}
	u.Snapshots = int32(len(r.all(TableSnapshots, indexQuota, tenant)))
	return u
}

// TenantWithUsage is a copy of tenant t with its usage filled in.
func (r *Reader) TenantWithUsage(t *restorev1.Tenant) *restorev1.Tenant {
	out := proto.Clone(t).(*restorev1.Tenant)
	out.Usage = r.TenantUsage(t.Id)
	return out
}
