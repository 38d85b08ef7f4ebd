package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func applyCreateTenant(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.CreateTenant
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	if cmd.Tenant == nil {
		return nil, malformed("tenant")
	}
	if store.ReaderFor(txn).Tenant(cmd.Tenant.GetId()) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "tenant %q already exists", cmd.Tenant.GetId())
	}
	return cmd.Tenant, txn.Insert(store.TableTenants, cmd.Tenant)
}

// applySetTenantQuota replaces a tenant's quota.
func applySetTenantQuota(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.SetTenantQuota
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Tenant(cmd.TenantId)
	if cur == nil {
		return nil, notFound("tenant %q not found", cmd.TenantId)
	}
	next := proto.Clone(cur).(*restorev1.Tenant)
	next.Quota = cmd.Quota
	return next, txn.Insert(store.TableTenants, next)
}
