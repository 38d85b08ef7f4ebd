package api

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/trend"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Policy limits.
const (
	minPolicyInterval = 60
	maxPolicyInterval = 30 * 24 * 3600
	maxPerHostLimit   = 16
	maxTrendRuns      = 500
)

// VerificationPolicyService implements restore.v1.VerificationPolicyService.
type VerificationPolicyService struct {
	restorev1.UnimplementedVerificationPolicyServiceServer
	*Deps
}

// tenantFor is the tenant a call acts for: a tenant-scoped token's own (a
// named other tenant is NotFound), or the one an operator or admin names.
func tenantFor(r *store.Reader, p *auth.Principal, named string) (string, error) {
	if err := validate.Optional("tenant", named); err != nil {
		return "", err
	}
	switch {
	case p.Tenant != "" && named != "" && named != p.Tenant:
		return "", status.Errorf(codes.NotFound, "tenant %q not found", named)
	case p.Tenant != "":
		return p.Tenant, nil
	case named == "":
		return "", validate.Errorf("tenant is required for operator and admin tokens")
	case r.Tenant(named) == nil:
		return "", status.Errorf(codes.NotFound, "tenant %q not found", named)
	}
	return named, nil
}

func checkAsset(asset string, allowStar bool) error {
	if asset == "*" && allowStar {
		return nil
	}
	if err := validate.Required("asset", asset); err != nil {
		return err
	}
	if asset == "*" {
		return validate.Errorf("asset must name one asset here, not \"*\"")
	}
	return nil
}

// SetVerificationPolicy implements the RPC.
func (s *VerificationPolicyService) SetVerificationPolicy(ctx context.Context, req *restorev1.SetVerificationPolicyRequest) (*restorev1.SetVerificationPolicyResponse, error) {
	in := req.GetPolicy()
	if in == nil {
		return nil, validate.Errorf("policy is required")
	}
	p := proto.Clone(in).(*restorev1.VerificationPolicy)
	switch {
	case req.Asset != "" && p.Asset != "" && p.Asset != req.Asset:
		return nil, validate.Errorf("the path names asset %q but policy.asset is %q", req.Asset, p.Asset)
	case req.Asset != "":
		p.Asset = req.Asset
	}
	tenant, err := tenantFor(s.Store.Read(nil), principal(ctx), p.Tenant)
	if err != nil {
		return nil, err
	}
	if err := checkAsset(p.Asset, true); err != nil {
		return nil, err
	}
	if err := validate.Range("interval_seconds", p.IntervalSeconds, minPolicyInterval, maxPolicyInterval); err != nil {
		return nil, err
	}
	if p.MaxPerHost == 0 {
		p.MaxPerHost = 1
	}
	if err := validate.Range("max_per_host", int64(p.MaxPerHost), 1, maxPerHostLimit); err != nil {
		return nil, err
	}
	if p.MemoryMib == 0 {
		p.MemoryMib = lifecycle.DefaultMemoryMiB
	}
	if err := validate.Range("memory_mib", p.MemoryMib, validate.MinMemoryMiB, validate.MaxMemoryMiB); err != nil {
		return nil, err
	}
	if err := normalizeVerify(restorev1.Mode_MODE_VERIFY, p.Verify); err != nil {
		return nil, err
	}
	p.Tenant, p.Id, p.UpdateTime = tenant, tenant+"/"+p.Asset, timestamppb.New(s.Now())
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_SET_VERIFICATION_POLICY, &raftv1.SetVerificationPolicy{Policy: p})
	if err != nil {
		return nil, err
	}
	return &restorev1.SetVerificationPolicyResponse{Policy: out.(*restorev1.VerificationPolicy)}, nil
}

// ListVerificationPolicies implements the RPC.
func (s *VerificationPolicyService) ListVerificationPolicies(ctx context.Context, _ *restorev1.ListVerificationPoliciesRequest) (*restorev1.ListVerificationPoliciesResponse, error) {
	return &restorev1.ListVerificationPoliciesResponse{Policies: s.Store.Read(nil).VerificationPolicies(principal(ctx).Scope())}, nil
}

// DeleteVerificationPolicy implements the RPC.
func (s *VerificationPolicyService) DeleteVerificationPolicy(ctx context.Context, req *restorev1.DeleteVerificationPolicyRequest) (*restorev1.DeleteVerificationPolicyResponse, error) {
	r := s.Store.Read(nil)
	tenant, err := tenantFor(r, principal(ctx), req.Tenant)
	if err != nil {
		return nil, err
	}
	if err := checkAsset(req.Asset, true); err != nil {
		return nil, err
	}
	id := tenant + "/" + req.Asset
	if r.VerificationPolicy(id) == nil {
		return nil, status.Errorf(codes.NotFound, "no verification policy for asset %q of tenant %s", req.Asset, tenant)
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_DELETE_VERIFICATION_POLICY, &raftv1.DeleteVerificationPolicy{Id: id}); err != nil {
		return nil, err
	}
	return &restorev1.DeleteVerificationPolicyResponse{}, nil
}

// RunVerification implements the RPC.
func (s *VerificationPolicyService) RunVerification(ctx context.Context, req *restorev1.RunVerificationRequest) (*restorev1.RunVerificationResponse, error) {
	r := s.Store.Read(nil)
	p := principal(ctx)
	rpID := req.RecoveryPointId
	switch {
	case rpID != "" && req.Asset != "":
		return nil, validate.Errorf("give recovery_point_id or asset, not both")
	case rpID == "" && req.Asset == "":
		return nil, validate.Errorf("recovery_point_id or asset is required")
	case req.Asset != "":
		tenant, err := tenantFor(r, p, req.Tenant)
		if err != nil {
			return nil, err
		}
		if err := checkAsset(req.Asset, false); err != nil {
			return nil, err
		}
		var newest *restorev1.RecoveryPoint
		for _, rp := range r.RecoveryPoints(tenant) {
			if rp.Asset == req.Asset && rp.Valid && (newest == nil || rp.CreateTime.AsTime().After(newest.CreateTime.AsTime())) {
				newest = rp
			}
		}
		if newest == nil {
			return nil, status.Errorf(codes.NotFound, "asset %q of tenant %s has no valid recovery point", req.Asset, tenant)
		}
		rpID = newest.Id
	}
	if err := validate.Required("recovery_point_id", rpID); err != nil {
		return nil, err
	}
	if rp := r.RecoveryPoint(rpID); rp != nil && p.Sees(rp.Tenant) && !req.Force {
		for _, v := range r.Verifications(rp.Tenant) {
			if v.RecoveryPointId == rpID {
				return nil, status.Errorf(codes.FailedPrecondition, "recovery point %s was verified already (%s, verification %s, %s); set force to verify it again",
					rpID, v.Verdict, v.Id, v.GetEndTime().AsTime().Format(time.RFC3339))
			}
		}
	}
	created, err := (&RestoreService{Deps: s.Deps}).CreateRestore(ctx, &restorev1.CreateRestoreRequest{
		RecoveryPointId: rpID, Mode: restorev1.Mode_MODE_VERIFY, MemoryMib: req.MemoryMib, RequestId: req.RequestId, Verify: req.Verify,
	})
	if err != nil {
		return nil, err
	}
	return &restorev1.RunVerificationResponse{Restore: created.Restore}, nil
}

// GetVerificationTrend implements the RPC.
func (s *VerificationPolicyService) GetVerificationTrend(ctx context.Context, req *restorev1.GetVerificationTrendRequest) (*restorev1.GetVerificationTrendResponse, error) {
	r := s.Store.Read(nil)
	tenant, err := tenantFor(r, principal(ctx), req.Tenant)
	if err != nil {
		return nil, err
	}
	if err := checkAsset(req.Asset, false); err != nil {
		return nil, err
	}
	if err := validate.Range("last_n", int64(req.LastN), 0, maxTrendRuns); err != nil {
		return nil, err
	}
	var vs []*restorev1.Verification
	for _, v := range r.Verifications(tenant) {
		if v.Asset == req.Asset {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil, status.Errorf(codes.NotFound, "asset %q of tenant %s has no verifications yet", req.Asset, tenant)
	}
	return &restorev1.GetVerificationTrendResponse{Trend: trend.Compute(tenant, req.Asset, vs, int(req.LastN))}, nil
}
