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
	if err := validate.Name("asset", req.Asset, false); err != nil {
		return nil, err
	}
	size, err := validate.PageSize(req.PageSize)
	if err != nil {
		return nil, err
	}
	after, err := decodePageToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	out := &restorev1.ListRecoveryPointsResponse{}
	for _, rp := range s.Store.Read(nil).RecoveryPoints(principal(ctx).Scope()) {
		if (after != "" && rp.Id <= after) || (req.Asset != "" && rp.Asset != req.Asset) {
			continue
		}
		if len(out.RecoveryPoints) == size {
			out.NextPageToken = encodePageToken(out.RecoveryPoints[size-1].Id)
			break
		}
		out.RecoveryPoints = append(out.RecoveryPoints, rp)
	}
	return out, nil
}

// GetRecoveryPoint implements the RPC.
func (s *RecoveryPointService) GetRecoveryPoint(ctx context.Context, req *restorev1.GetRecoveryPointRequest) (*restorev1.GetRecoveryPointResponse, error) {
	if err := validate.Name("id", req.Id, true); err != nil {
		return nil, err
	}
	rp := s.Store.Read(nil).RecoveryPoint(req.Id)
	if rp == nil || !principal(ctx).Sees(rp.Tenant) {
		return nil, status.Errorf(codes.NotFound, "recovery point %q not found", req.Id)
	}
	return &restorev1.GetRecoveryPointResponse{RecoveryPoint: rp}, nil
}
