package api

import (
	"context"
	"errors"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FileBrowserTTL is how long a file browser link works.
const FileBrowserTTL = time.Hour

// FileBrowserGrant is what a file browser token opens: one tenant's
// recovery point, to list and download from (package filesweb).
type FileBrowserGrant struct {
	RecoveryPointID, Tenant string
}

// FileBrowsers holds file browser tokens: any number of requests until
// they expire (browsing is many requests), on the server that minted them.
type FileBrowsers struct{ links links[FileBrowserGrant] }

// NewFileBrowsers returns an empty token store.
func NewFileBrowsers() *FileBrowsers { return &FileBrowsers{links: newLinks[FileBrowserGrant]()} }

// ErrFileBrowserToken is a token that is unknown or expired.
var ErrFileBrowserToken = errors.New("this file browser link has expired; ask for a new one (POST /v1/recovery-points/{id}/files:browse)")

// Peek returns a token's grant.
func (b *FileBrowsers) Peek(tok string) (FileBrowserGrant, error) {
	g, ok := b.links.lookup(tok, time.Now(), false)
	if !ok {
		return FileBrowserGrant{}, ErrFileBrowserToken
	}
	return g, nil
}

// CreateFileBrowser implements the RPC.
func (s *RecoveryPointService) CreateFileBrowser(ctx context.Context, req *restorev1.CreateFileBrowserRequest) (*restorev1.CreateFileBrowserResponse, error) {
	rp, err := visibleRecoveryPoint(s.Deps, ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if _, err := s.fileHosts(rp); err != nil {
		return nil, err
	}
	now := s.Now()
	expire := now.Add(FileBrowserTTL)
	tok, err := s.FileBrowsers.links.mint(FileBrowserGrant{RecoveryPointID: rp.Id, Tenant: rp.Tenant}, expire, now)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "file browser token: %v", err)
	}
	s.Log.Info("file browser link made", "recovery_point", rp.Id, "expires", expire.Format(time.RFC3339)) // never the token
	return &restorev1.CreateFileBrowserResponse{Url: s.linkURL(ctx, "/files/"+tok+"/"), ExpireTime: timestamppb.New(expire)}, nil
}

// Browsed is a grant's recovery point, while it is still its tenant's.
func (s *RecoveryPointService) Browsed(g FileBrowserGrant) (*restorev1.RecoveryPoint, error) {
	rp := s.Store.Read(nil).RecoveryPoint(g.RecoveryPointID)
	if rp == nil || rp.Tenant != g.Tenant {
		return nil, status.Errorf(codes.NotFound, "recovery point %q not found", g.RecoveryPointID)
	}
	if !rp.Valid {
		return nil, status.Errorf(codes.FailedPrecondition, "recovery point %s is invalid: %s", rp.Id, rp.InvalidReason)
	}
	return rp, nil
}
