package api

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Join token lifetimes.
const (
	defaultJoinTokenTTL = time.Hour
	maxJoinTokenTTL     = 7 * 24 * time.Hour
)

// CreateJoinToken implements the RPC.
func (s *HostService) CreateJoinToken(ctx context.Context, req *restorev1.CreateJoinTokenRequest) (*restorev1.CreateJoinTokenResponse, error) {
	if err := validate.DNSLabel("host_id", req.HostId); err != nil {
		return nil, err
	}
	ttl := defaultJoinTokenTTL
	if req.TtlSeconds != 0 {
		if err := validate.Range("ttl_seconds", req.TtlSeconds, 60, int64(maxJoinTokenTTL/time.Second)); err != nil {
			return nil, err
		}
		ttl = time.Duration(req.TtlSeconds) * time.Second
	}
	if s.CA == nil || !s.CA.CanIssue() {
		return nil, status.Error(codes.FailedPrecondition, "this cluster cannot issue agent certificates (its servers have the CA without its key)")
	}
	id, secret := auth.NewJoinToken()
	now := s.Now()
	t := &raftv1.StoredJoinToken{Token: &restorev1.JoinToken{Id: id, HostId: req.HostId, CreateTime: timestamppb.New(now),
		ExpireTime: timestamppb.New(now.Add(ttl))}, SecretSha256: auth.Hash(secret)}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_JOIN_TOKEN, &raftv1.CreateJoinToken{Token: t}); err != nil {
		return nil, err
	}
	s.Log.Info("join token made", "id", id, "host", req.HostId, "expires", t.Token.ExpireTime.AsTime()) // never the secret
	return &restorev1.CreateJoinTokenResponse{Token: t.Token, Secret: secret, CaFingerprint: s.CA.Fingerprint()}, nil
}

// RemoveHost implements the RPC.
func (s *HostService) RemoveHost(ctx context.Context, req *restorev1.RemoveHostRequest) (*restorev1.RemoveHostResponse, error) {
	if _, err := s.host(req.Id); err != nil {
		return nil, err
	}
	if err := fsm.HostInUse(s.Store.Read(nil), req.Id); err != nil {
		return nil, err
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST, &raftv1.RemoveHost{Id: req.Id, Time: timestamppb.New(s.Now())}); err != nil {
		return nil, err
	}
	s.Log.Info("host removed; its agent's certificates are revoked", "host", req.Id)
	return &restorev1.RemoveHostResponse{}, nil
}
