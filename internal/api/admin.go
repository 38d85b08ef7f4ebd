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

// ListTenants implements the RPC.
func (s *AdminService) ListTenants(context.Context, *restorev1.ListTenantsRequest) (*restorev1.ListTenantsResponse, error) {
	return &restorev1.ListTenantsResponse{Tenants: s.Store.Read(nil).Tenants()}, nil
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
