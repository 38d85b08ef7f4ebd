package api

import (
	"context"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
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

// NewToken builds a token with a fresh id and secret.
func NewToken(tenant string, role auth.Role, description string, now *timestamppb.Timestamp) (*raftv1.StoredToken, string) {
	id := auth.NewTokenID()
	secret := auth.NewSecret(id)
	return &raftv1.StoredToken{
		Token:        &restorev1.Token{Id: id, Tenant: tenant, Role: string(role), CreateTime: now, Description: description},
		SecretSha256: auth.Hash(secret),
	}, secret
}

// CreateToken implements the RPC.
func (s *AdminService) CreateToken(ctx context.Context, req *restorev1.CreateTokenRequest) (*restorev1.CreateTokenResponse, error) {
	role, ok := auth.ParseRole(req.Role)
	if !ok {
		return nil, validate.Errorf("role %q is not one of admin, operator, partner, backup, agent", req.Role)
	}
	if err := validate.Optional("description", req.Description); err != nil {
		return nil, err
	}
	switch {
	case role.TenantScoped():
		if err := validate.DNSLabel("tenant", req.Tenant); err != nil {
			return nil, err
		}
		if s.Store.Read(nil).Tenant(req.Tenant) == nil {
			return nil, status.Errorf(codes.NotFound, "tenant %q not found; create it first (POST /v1/tenants)", req.Tenant)
		}
	case req.Tenant != "":
		return nil, validate.Errorf("role %q is not bound to a tenant; leave tenant empty", role)
	}
	tok, secret := NewToken(req.Tenant, role, req.Description, timestamppb.New(s.Now()))
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: tok}); err != nil {
		return nil, err
	}
	return &restorev1.CreateTokenResponse{Id: tok.Token.Id, Secret: secret, Tenant: tok.Token.Tenant, Role: tok.Token.Role}, nil
}

// ListTokens implements the RPC.
func (s *AdminService) ListTokens(_ context.Context, req *restorev1.ListTokensRequest) (*restorev1.ListTokensResponse, error) {
	out := &restorev1.ListTokensResponse{}
	for _, t := range s.Store.Read(nil).Tokens() {
		if req.Tenant == "" || t.Token.Tenant == req.Tenant {
			out.Tokens = append(out.Tokens, t.Token)
		}
	}
	return out, nil
}

// RevokeToken implements the RPC.
func (s *AdminService) RevokeToken(ctx context.Context, req *restorev1.RevokeTokenRequest) (*restorev1.RevokeTokenResponse, error) {
	if err := validate.Required("id", req.Id); err != nil {
		return nil, err
	}
	cur := s.Store.Read(nil).Token(req.Id)
	if cur == nil {
		return nil, status.Errorf(codes.NotFound, "token %q not found", req.Id)
	}
	if cur.Token.RevokeTime != nil {
		return &restorev1.RevokeTokenResponse{Token: cur.Token}, nil
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REVOKE_TOKEN,
		&raftv1.RevokeToken{Id: req.Id, RevokeTime: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.RevokeTokenResponse{Token: out.(*raftv1.StoredToken).Token}, nil
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
