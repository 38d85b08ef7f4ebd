package api

import (
	"context"
	"errors"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DownloadTTL is how long a download link works (never past its
// restore's lease).
const DownloadTTL = time.Hour

// DownloadGrant is what a download token opens: one image file of one
// IMAGE restore, or one file or directory (Archive: a tar stream of
// unknown size) of a recovery point (file-level restore).
type DownloadGrant struct {
	RestoreID, Tenant, HostID string
	Disk, FileName, SHA256    string
	Size                      int64
	RecoveryPointID, Path     string
	Archive                   bool
}

// Downloads holds download tokens. A token serves any number of ranged
// requests (a download resumes) until the file's last byte was sent once
// (then it is spent: a replay is refused) or it expires. The URL points at
// the server that minted it.
type Downloads struct{ links links[DownloadGrant] }

// NewDownloads returns an empty token store.
func NewDownloads() *Downloads { return &Downloads{links: newLinks[DownloadGrant]()} }

// ErrDownloadToken is a download token that is unknown, spent or expired.
var ErrDownloadToken = errors.New("this download link was already used to the end or has expired; ask for a new one (POST /v1/restores/{id}:download)")

// Peek returns a token's grant without spending it.
func (d *Downloads) Peek(tok string) (DownloadGrant, error) {
	g, ok := d.links.lookup(tok, time.Now(), false)
	if !ok {
		return DownloadGrant{}, ErrDownloadToken
	}
	return g, nil
}

// Spend ends a token: its file was sent to the end.
func (d *Downloads) Spend(tok string) { d.links.lookup(tok, time.Now(), true) }

// CreateDownload implements the RPC.
func (s *RestoreService) CreateDownload(ctx context.Context, req *restorev1.CreateDownloadRequest) (*restorev1.CreateDownloadResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if x.Mode != restorev1.Mode_MODE_IMAGE {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is of mode %s: only an IMAGE restore (POST /v1/recovery-points/{id}:export-image) has files to download", x.Id, lifecycle.ModeName(x.Mode))
	}
	if x.State != lifecycle.Running || x.Image == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: its files can be downloaded once it is RUNNING", x.Id, x.State)
	}
	var file *restorev1.ImageFile
	for _, f := range x.Image.Files {
		if f.Disk == req.Disk || (req.Disk == "" && len(x.Image.Files) == 1) {
			file = f
		}
	}
	if file == nil {
		names := make([]string, 0, len(x.Image.Files))
		for _, f := range x.Image.Files {
			names = append(names, f.Disk)
		}
		return nil, status.Errorf(codes.InvalidArgument, "restore %s has no image of disk %q: name one of %v", x.Id, req.Disk, names)
	}
	now := s.Now()
	expire := now.Add(DownloadTTL)
	if e := x.GetExpireTime().AsTime(); e.Before(expire) {
		expire = e
	}
	tok, err := s.Downloads.links.mint(DownloadGrant{RestoreID: x.Id, Tenant: x.Tenant, HostID: x.HostId, Disk: file.Disk,
		FileName: file.FileName, Size: file.SizeBytes, SHA256: file.Sha256}, expire, now)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "download token: %v", err)
	}
	s.Log.Info("download link made", "restore", x.Id, "disk", file.Disk, "expires", expire.Format(time.RFC3339)) // never the token
	return &restorev1.CreateDownloadResponse{Url: s.linkURL(ctx, "/download/"+tok), ExpireTime: timestamppb.New(expire),
		FileName: file.FileName, SizeBytes: file.SizeBytes, Sha256: file.Sha256}, nil
}

// ExportImage implements the RPC: an IMAGE restore of the recovery point,
// made like any other restore.
func (s *RestoreService) ExportImage(ctx context.Context, req *restorev1.ExportImageRequest) (*restorev1.ExportImageResponse, error) {
	out, err := s.CreateRestore(ctx, &restorev1.CreateRestoreRequest{RecoveryPointId: req.RecoveryPointId, Mode: restorev1.Mode_MODE_IMAGE,
		RequestId: req.RequestId, TtlSeconds: req.TtlSeconds, Image: &restorev1.ImageOptions{Format: req.Format}})
	if err != nil {
		return nil, err
	}
	return &restorev1.ExportImageResponse{Restore: out.Restore}, nil
}
