package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// VerificationService implements restore.v1.VerificationService.
type VerificationService struct {
	restorev1.UnimplementedVerificationServiceServer
	*Deps
}

// ListVerifications implements the RPC: newest first, paged.
func (s *VerificationService) ListVerifications(ctx context.Context, req *restorev1.ListVerificationsRequest) (*restorev1.ListVerificationsResponse, error) {
	if err := validate.Name("asset", req.Asset, false); err != nil {
		return nil, err
	}
	if err := validate.Name("recovery_point_id", req.RecoveryPointId, false); err != nil {
		return nil, err
	}
	size, err := validate.PageSize(req.PageSize)
	if err != nil {
		return nil, err
	}
	before, err := decodePageToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	out := &restorev1.ListVerificationsResponse{}
	for _, v := range s.Store.Read(nil).Verifications(principal(ctx).Scope()) {
		if (before != "" && v.Id >= before) || (req.Asset != "" && v.Asset != req.Asset) ||
			(req.RecoveryPointId != "" && v.RecoveryPointId != req.RecoveryPointId) {
			continue
		}
		if len(out.Verifications) == size {
			out.NextPageToken = encodePageToken(out.Verifications[size-1].Id)
			break
		}
		out.Verifications = append(out.Verifications, v)
	}
	return out, nil
}

// GetVerification implements the RPC.
func (s *VerificationService) GetVerification(ctx context.Context, req *restorev1.GetVerificationRequest) (*restorev1.GetVerificationResponse, error) {
	if err := validate.Name("id", req.Id, true); err != nil {
		return nil, err
	}
	v := s.Store.Read(nil).Verification(req.Id)
	if v == nil || !principal(ctx).Sees(v.Tenant) {
		return nil, status.Errorf(codes.NotFound, "verification %q not found", req.Id)
	}
	return &restorev1.GetVerificationResponse{Verification: v}, nil
}
