package api

import (
	"context"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// AdminService implements restore.v1.AdminService.
type AdminService struct {
	restorev1.UnimplementedAdminServiceServer
	*Deps
}

// CreateTenant implements the RPC.
func (s *AdminService) CreateTenant(ctx context.Context, req *restorev1.CreateTenantRequest) (*restorev1.CreateTenantResponse, error) {
	if err := validate.DNSLabel("id", req.Id); err != nil {
		return nil, err
	}
	if err := validate.Optional("display_name", req.DisplayName); err != nil {
		return nil, err
	}
	if s.Store.Read(nil).Tenant(req.Id) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "tenant %q already exists", req.Id)
	}
	t := &restorev1.Tenant{Id: req.Id, DisplayName: req.DisplayName, CreateTime: timestamppb.New(s.Now())}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: t})
	if err != nil {
		return nil, err
	}
	return &restorev1.CreateTenantResponse{Tenant: out.(*restorev1.Tenant)}, nil
}

// ListTenants implements the RPC: every tenant with its quota and usage.
func (s *AdminService) ListTenants(context.Context, *restorev1.ListTenantsRequest) (*restorev1.ListTenantsResponse, error) {
	r := s.Store.Read(nil)
	out := &restorev1.ListTenantsResponse{}
	for _, t := range r.Tenants() {
		out.Tenants = append(out.Tenants, r.TenantWithUsage(t))
	}
	return out, nil
}

// GetTenant implements the RPC: a tenant token sees only its own tenant
// (another is NotFound, like a tenant that does not exist).
func (s *AdminService) GetTenant(ctx context.Context, req *restorev1.GetTenantRequest) (*restorev1.GetTenantResponse, error) {
	if err := validate.Required("id", req.Id); err != nil {
		return nil, err
	}
	r := s.Store.Read(nil)
	t := r.Tenant(req.Id)
	if t == nil || !principal(ctx).Sees(t.Id) {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", req.Id)
	}
	return &restorev1.GetTenantResponse{Tenant: r.TenantWithUsage(t)}, nil
}

// SetTenantQuota implements the RPC.
func (s *AdminService) SetTenantQuota(ctx context.Context, req *restorev1.SetTenantQuotaRequest) (*restorev1.SetTenantQuotaResponse, error) {
	if err := validate.Required("id", req.Id); err != nil {
		return nil, err
	}
	q := req.Quota
	if q == nil {
		return nil, validate.Errorf("quota is required (send {} to lift every limit)")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"quota.max_restores", int64(q.MaxRestores)}, {"quota.max_vcpus", int64(q.MaxVcpus)}, {"quota.max_memory_mib", q.MaxMemoryMib}, {"quota.max_snapshots", int64(q.MaxSnapshots)}} {
		if f.v < 0 {
			return nil, validate.Errorf("%s must be 0 (no limit) or positive, got %d", f.name, f.v)
		}
	}
	if s.Store.Read(nil).Tenant(req.Id) == nil {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", req.Id)
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_SET_TENANT_QUOTA, &raftv1.SetTenantQuota{TenantId: req.Id, Quota: q})
	if err != nil {
		return nil, err
	}
	return &restorev1.SetTenantQuotaResponse{Tenant: s.Store.Read(nil).TenantWithUsage(out.(*restorev1.Tenant))}, nil
}

// GetCluster implements the RPC.
func (s *AdminService) GetCluster(context.Context, *restorev1.GetClusterRequest) (*restorev1.GetClusterResponse, error) {
	cfg := s.Node.Raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	leaderID, _ := s.Node.Leader()
	r := s.Store.Read(nil)
	out := &restorev1.GetClusterResponse{
		LeaderId:     leaderID,
		CommitIndex:  s.Node.CommitIndex(),
		AppliedIndex: s.Node.AppliedIndex(),
		LastIndex:    s.Node.Raft.LastIndex(),
		ServerId:     s.ServerID,
	}
	if s.CA != nil {
		out.CaFingerprint = s.CA.Fingerprint()
	}
	for _, srv := range cfg.Configuration().Servers {
		x := &restorev1.Server{
			Id:          string(srv.ID),
			RaftAddress: string(srv.Address),
			Suffrage:    "voter",
			Leader:      string(srv.ID) == leaderID,
		}
		if srv.Suffrage != raft.Voter {
			x.Suffrage = "nonvoter"
		}
		if reg := r.Server(string(srv.ID)); reg != nil {
			x.GrpcAddress = reg.GrpcAddress
		}
		out.Servers = append(out.Servers, x)
	}
	return out, nil
}
