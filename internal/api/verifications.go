package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/store"
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
	if err := validate.Optional("asset", req.Asset); err != nil {
		return nil, err
	}
	if err := validate.Optional("recovery_point_id", req.RecoveryPointId); err != nil {
		return nil, err
	}
	p, err := paginate(s.Store.Read(nil).Verifications(principal(ctx).Scope()), (*restorev1.Verification).GetId, newestFirst,
		req.PageSize, req.PageToken, func(v *restorev1.Verification) bool {
			return (req.Asset == "" || v.Asset == req.Asset) && (req.RecoveryPointId == "" || v.RecoveryPointId == req.RecoveryPointId)
		})
	if err != nil {
		return nil, err
	}
	return &restorev1.ListVerificationsResponse{Verifications: p.Items, NextPageToken: p.Next}, nil
}

// WatchVerifications implements the RPC: the caller's verifications (of
// one asset or recovery point, if asked), then each new one.
func (s *VerificationService) WatchVerifications(req *restorev1.WatchVerificationsRequest, stream restorev1.VerificationService_WatchVerificationsServer) error {
	if err := validate.Optional("asset", req.Asset); err != nil {
		return err
	}
	if err := validate.Optional("recovery_point_id", req.RecoveryPointId); err != nil {
		return err
	}
	p := principal(stream.Context())
	match := func(_ *store.Reader, v *restorev1.Verification) bool {
		return p.Sees(v.Tenant) && (req.Asset == "" || v.Asset == req.Asset) && (req.RecoveryPointId == "" || v.RecoveryPointId == req.RecoveryPointId)
	}
	return runWatch(s.Deps, stream, req, watchSpec[*restorev1.Verification]{
		kind:  store.KindVerification,
		list:  func(r *store.Reader) []*restorev1.Verification { return filtered(r, r.Verifications(p.Scope()), match) },
		match: match,
		send: func(typ restorev1.WatchEventType, rv store.Version, v *restorev1.Verification) error {
			return stream.Send(&restorev1.WatchVerificationsResponse{Verification: v, Type: typ, ResourceVersion: rv.String()})
		},
	})
}

// GetVerification implements the RPC.
func (s *VerificationService) GetVerification(ctx context.Context, req *restorev1.GetVerificationRequest) (*restorev1.GetVerificationResponse, error) {
	if err := validate.Required("id", req.Id); err != nil {
		return nil, err
	}
	v := s.Store.Read(nil).Verification(req.Id)
	if v == nil || !principal(ctx).Sees(v.Tenant) {
		return nil, status.Errorf(codes.NotFound, "verification %q not found", req.Id)
	}
	return &restorev1.GetVerificationResponse{Verification: v}, nil
}
