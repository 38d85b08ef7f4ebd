package api

import (
	"context"
	"fmt"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Token lifetimes a request may ask for.
const (
	maxTokenTTL     = 10 * 365 * 24 * time.Hour
	defaultGrace    = time.Hour
	maxRotateGrace  = 30 * 24 * time.Hour
	selfTokenID     = "self"
	maxTouchPerCall = 10000
)

// TokenOptions are what a new token is made with.
type TokenOptions struct {
	Tenant      string
	Role        auth.Role
	Description string
	// TTL is how long it works (0: until revoked).
	TTL time.Duration
	// RotatedFrom is the token it replaces.
	RotatedFrom string
}

// NewToken builds a token with a fresh id and secret, created at now.
func NewToken(o TokenOptions, now time.Time) (*raftv1.StoredToken, string) {
	id := auth.NewTokenID()
	secret := auth.NewSecret(id)
	t := &restorev1.Token{Id: id, Tenant: o.Tenant, Role: string(o.Role), CreateTime: timestamppb.New(now),
		Description: o.Description, RotatedFrom: o.RotatedFrom}
	if o.TTL > 0 {
		t.ExpireTime = timestamppb.New(now.Add(o.TTL))
	}
	return &raftv1.StoredToken{Token: t, SecretSha256: auth.Hash(secret)}, secret
}

func createdToken(t *restorev1.Token, secret string) *restorev1.CreateTokenResponse {
	return &restorev1.CreateTokenResponse{Id: t.Id, Secret: secret, Tenant: t.Tenant, Role: t.Role, ExpireTime: t.ExpireTime}
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
	if req.TtlSeconds < 0 || req.TtlSeconds > int64(maxTokenTTL/time.Second) {
		return nil, validate.Errorf("ttl_seconds %d is out of range: 0 (never expires) to %d (10 years)", req.TtlSeconds, int64(maxTokenTTL/time.Second))
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
	tok, secret := NewToken(TokenOptions{Tenant: req.Tenant, Role: role, Description: req.Description, TTL: time.Duration(req.TtlSeconds) * time.Second}, s.Now())
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: tok}); err != nil {
		return nil, err
	}
	return createdToken(tok.Token, secret), nil
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

// RotateToken implements the RPC: the new token inherits the old one's
// tenant, role, description and lifetime; the old one works for the grace
// period (or until it would have expired, if sooner).
func (s *AdminService) RotateToken(ctx context.Context, req *restorev1.RotateTokenRequest) (*restorev1.RotateTokenResponse, error) {
	p := auth.FromContext(ctx)
	id := req.Id
	if id == "" || id == selfTokenID {
		id = p.TokenID
	}
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	if req.GraceSeconds < 0 || req.GraceSeconds > int64(maxRotateGrace/time.Second) {
		return nil, validate.Errorf("grace_seconds %d is out of range: 0 (the default, %d) to %d (30 days)", req.GraceSeconds, int64(defaultGrace/time.Second), int64(maxRotateGrace/time.Second))
	}
	grace := defaultGrace
	if req.GraceSeconds > 0 {
		grace = time.Duration(req.GraceSeconds) * time.Second
	}
	if p.Role != auth.RoleAdmin && id != p.TokenID {
		// Another token is none of this caller's business, whoever owns it.
		return nil, status.Errorf(codes.PermissionDenied, "role %q may rotate only the token it calls with (id %q or \"self\")", p.Role, p.TokenID)
	}
	now := s.Now()
	old := s.Store.Read(nil).Token(id)
	switch {
	case old == nil:
		return nil, status.Errorf(codes.NotFound, "token %q not found", id)
	case old.Token.ReplacedBy != "":
		return nil, status.Errorf(codes.FailedPrecondition, "token %s was already rotated to %s: rotate that one", id, old.Token.ReplacedBy)
	case !store.TokenUsable(old, now):
		return nil, status.Errorf(codes.FailedPrecondition, "token %s is revoked or expired: create a new token instead", id)
	}
	var ttl time.Duration
	if old.Token.ExpireTime != nil && old.Token.CreateTime != nil {
		ttl = old.Token.ExpireTime.AsTime().Sub(old.Token.CreateTime.AsTime())
	}
	tok, secret := NewToken(TokenOptions{Tenant: old.Token.Tenant, Role: auth.Role(old.Token.Role), Description: old.Token.Description, TTL: ttl, RotatedFrom: id}, now)
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN,
		&raftv1.RotateToken{Token: tok, OldId: id, OldExpireTime: timestamppb.New(now.Add(grace))})
	if err != nil {
		return nil, err
	}
	return &restorev1.RotateTokenResponse{Token: createdToken(tok.Token, secret), Old: out.(*raftv1.StoredToken).Token}, nil
}

// ReportTokenUse implements the internal RPC: another server's batch of
// token uses, written in one entry.
func (s *ClusterService) ReportTokenUse(ctx context.Context, req *raftv1.ReportTokenUseRequest) (*raftv1.ReportTokenUseResponse, error) {
	uses := req.GetUses().GetUses()
	if len(uses) > maxTouchPerCall {
		return nil, validate.Errorf("uses has %d entries; at most %d are allowed", len(uses), maxTouchPerCall)
	}
	if len(uses) == 0 {
		return &raftv1.ReportTokenUseResponse{}, nil
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_TOUCH_TOKENS, req.Uses); err != nil {
		return nil, err
	}
	return &raftv1.ReportTokenUseResponse{}, nil
}

// FlushTokenUses writes the token uses this server saw since the last
// flush: on the leader directly, elsewhere through the leader's
// ReportTokenUse. What could not be written is kept for the next flush.
func (d *Deps) FlushTokenUses(ctx context.Context) error {
	if d.Uses == nil {
		return nil
	}
	taken := d.Uses.Take()
	if len(taken) == 0 {
		return nil
	}
	cmd := &raftv1.TouchTokens{}
	for id, t := range taken {
		if len(cmd.Uses) == maxTouchPerCall {
			d.Uses.Note(id, t) // waits for the next flush
			continue
		}
		cmd.Uses = append(cmd.Uses, &raftv1.TokenUse{Id: id, Time: timestamppb.New(t)})
	}
	err := errRunLocally
	if d.Peers != nil && !d.Node.IsLeader() {
		_, err = d.Peers.forward(ctx, raftv1.ClusterService_ReportTokenUse_FullMethodName, &raftv1.ReportTokenUseRequest{Uses: cmd})
	}
	if err == errRunLocally {
		_, err = d.Node.Apply(raftv1.CommandType_COMMAND_TYPE_TOUCH_TOKENS, cmd, d.ApplyTimeout)
	}
	if err != nil {
		d.Uses.Restore(taken)
		return fmt.Errorf("write token last-used times: %w", err)
	}
	return nil
}
