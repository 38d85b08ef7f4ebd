package api

import (
	"context"
	"regexp"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// poolName is what a libvirt storage pool's name may be here.
var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// PromoteRestore implements the RPC.
func (s *RestoreService) PromoteRestore(ctx context.Context, req *restorev1.PromoteRestoreRequest) (*restorev1.PromoteRestoreResponse, error) {
	r := s.Store.Read(nil)
	x, err := visibleRestore(r, principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if !poolName.MatchString(req.StoragePool) {
		return nil, validate.Errorf("storage_pool %q is not a libvirt storage pool's name (letters, digits, '_', '.', '-'; at most 64)", req.StoragePool)
	}
	if x.State == lifecycle.Promoting && x.GetPromotion().GetStoragePool() == req.StoragePool {
		return &restorev1.PromoteRestoreResponse{Restore: x}, nil // asked already: no raft entry
	}
	if err := lifecycle.PromotionRefused(x); err != nil {
		return nil, err
	}
	if err := needs(r, x.HostId, hypervisor.Promotion, "promote restores"); err != nil {
		return nil, err
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_PROMOTE_RESTORE, &raftv1.PromoteRestore{Id: x.Id, StoragePool: req.StoragePool, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.PromoteRestoreResponse{Restore: out.(*restorev1.Restore)}, nil
}

// CancelPromotion implements the RPC.
func (s *RestoreService) CancelPromotion(ctx context.Context, req *restorev1.CancelPromotionRequest) (*restorev1.CancelPromotionResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if err := lifecycle.PromotionCancelRefused(x); err != nil {
		return nil, err
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CANCEL_PROMOTION, &raftv1.CancelPromotion{Id: x.Id, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.CancelPromotionResponse{Restore: out.(*restorev1.Restore)}, nil
}
