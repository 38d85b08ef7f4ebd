package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RecoveryPointService implements restore.v1.RecoveryPointService.
type RecoveryPointService struct {
	restorev1.UnimplementedRecoveryPointServiceServer
	*Deps
}

// ListRecoveryPoints implements the RPC.
func (s *RecoveryPointService) ListRecoveryPoints(ctx context.Context, req *restorev1.ListRecoveryPointsRequest) (*restorev1.ListRecoveryPointsResponse, error) {
	if err := validate.Optional("asset", req.Asset); err != nil {
		return nil, err
	}
	p, err := paginate(s.Store.Read(nil).RecoveryPoints(principal(ctx).Scope()), (*restorev1.RecoveryPoint).GetId, ascending,
		req.PageSize, req.PageToken, func(rp *restorev1.RecoveryPoint) bool { return req.Asset == "" || rp.Asset == req.Asset })
	if err != nil {
		return nil, err
	}
	return &restorev1.ListRecoveryPointsResponse{RecoveryPoints: p.Items, NextPageToken: p.Next}, nil
}

// GetRecoveryPoint implements the RPC.
func (s *RecoveryPointService) GetRecoveryPoint(ctx context.Context, req *restorev1.GetRecoveryPointRequest) (*restorev1.GetRecoveryPointResponse, error) {
	rp, err := seenRecoveryPoint(s.Deps, ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetRecoveryPointResponse{RecoveryPoint: rp}, nil
}

// seenRecoveryPoint is the caller's recovery point, valid or not; another
// tenant's is NOT_FOUND.
func seenRecoveryPoint(d *Deps, ctx context.Context, id string) (*restorev1.RecoveryPoint, error) {
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	rp := d.Store.Read(nil).RecoveryPoint(id)
	if rp == nil || !principal(ctx).Sees(rp.Tenant) {
		return nil, status.Errorf(codes.NotFound, "recovery point %q not found", id)
	}
	return rp, nil
}
