package api

import (
	"context"
	"errors"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/diskview"
	"github.com/restored/restored/internal/fileread"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// File-level restore: a recovery point's files are listed and downloaded
// through the agent of a host that holds it, which reads the filesystems
// in a confined child (package fileread); nothing goes through raft.

// filesTimeout bounds one listing (the agent's own bound is shorter).
const filesTimeout = 40 * time.Second

const (
	defaultFilesPage = 500
	maxFilesPage     = 5000
)

// filePath checks a request's path before any host is asked.
func filePath(p string) (string, []string, error) {
	parts, err := diskview.SplitPath(p)
	if err != nil {
		return "", nil, validate.Errorf("path: %v", err)
	}
	return "/" + path.Join(parts...), parts, nil
}

// visibleRecoveryPoint is the caller's valid recovery point; another
// tenant's is NOT_FOUND, an invalid one FAILED_PRECONDITION.
func visibleRecoveryPoint(d *Deps, ctx context.Context, id string) (*restorev1.RecoveryPoint, error) {
	rp, err := seenRecoveryPoint(d, ctx, id)
	if err != nil {
		return nil, err
	}
	if !rp.Valid {
		return nil, status.Errorf(codes.FailedPrecondition, "recovery point %s is invalid: %s", id, rp.InvalidReason)
	}
	return rp, nil
}

// fileHosts are the hosts that hold rp and read files.
func (d *Deps) fileHosts(rp *restorev1.RecoveryPoint) ([]string, error) {
	r := d.Store.Read(nil)
	if len(rp.HostIds) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "recovery point %s is on no registered host", rp.Id)
	}
	if err := anyCan(r, rp.HostIds, hypervisor.Files, "read recovery points' files"); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range rp.HostIds {
		if needs(r, h, hypervisor.Files, "") == nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// fileListing asks a host holding rp for a listing (or a stat).
func (d *Deps) fileListing(ctx context.Context, rp *restorev1.RecoveryPoint, open *restorev1.TunnelOpen) (*restorev1.FileListing, error) {
	hosts, err := d.fileHosts(rp)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, filesTimeout)
	defer cancel()
	var last error
	for _, h := range hosts {
		data, err := d.askFiles(ctx, h, open)
		if status.Code(err) == codes.Unavailable {
			last = err
			continue // another host that holds it may answer
		}
		if err != nil {
			return nil, err
		}
		var l restorev1.FileListing
		if err := proto.Unmarshal(data, &l); err != nil {
			return nil, status.Errorf(codes.Internal, "host %s sent a listing that does not decode: %v", h, err)
		}
		return &l, nil
	}
	return nil, last
}

func (d *Deps) askFiles(ctx context.Context, hostID string, open *restorev1.TunnelOpen) ([]byte, error) {
	c, err := d.OpenChannel(ctx, hostID, open)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	data, err := io.ReadAll(io.LimitReader(c, 64<<20))
	if err != nil {
		return nil, FileError(hostID, err)
	}
	if ctx.Err() != nil {
		return nil, status.Errorf(codes.DeadlineExceeded, "host %s did not answer within %s", hostID, filesTimeout)
	}
	return data, nil
}

// FileError is the API's error for what a host said when it could not
// read files (downloadweb uses it too).
func FileError(hostID string, err error) error {
	var re *tunnel.RemoteError
	if !errors.As(err, &re) {
		return status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
	}
	f := fileread.FromWire(re.Msg)
	code := map[fileread.Kind]codes.Code{
		fileread.KindNotFound: codes.NotFound, fileread.KindBadPath: codes.InvalidArgument,
		fileread.KindNotDir: codes.FailedPrecondition, fileread.KindIsDir: codes.FailedPrecondition,
		fileread.KindSymlink: codes.FailedPrecondition, fileread.KindDamaged: codes.FailedPrecondition,
		fileread.KindTooBig: codes.ResourceExhausted, fileread.KindLimit: codes.ResourceExhausted,
	}[f.Kind]
	if code == codes.OK {
		code = codes.Internal
	}
	return status.Error(code, f.Message)
}

// ListRecoveryPointFiles implements the RPC.
func (s *RecoveryPointService) ListRecoveryPointFiles(ctx context.Context, req *restorev1.ListRecoveryPointFilesRequest) (*restorev1.ListRecoveryPointFilesResponse, error) {
	if _, _, err := filePath(req.Path); err != nil {
		return nil, err
	}
	rp, err := visibleRecoveryPoint(s.Deps, ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return s.ListFiles(ctx, rp, req)
}

// ListFiles lists a directory of rp (the caller has checked that it may).
func (s *RecoveryPointService) ListFiles(ctx context.Context, rp *restorev1.RecoveryPoint, req *restorev1.ListRecoveryPointFilesRequest) (*restorev1.ListRecoveryPointFilesResponse, error) {
	p, _, err := filePath(req.Path)
	if err != nil {
		return nil, err
	}
	size := int(req.PageSize)
	switch {
	case size == 0:
		size = defaultFilesPage
	case size < 0 || size > maxFilesPage:
		return nil, validate.Errorf("page_size must be 1 to %d (default %d), got %d", maxFilesPage, defaultFilesPage, size)
	}
	offset := 0
	if req.PageToken != "" {
		if offset, err = strconv.Atoi(req.PageToken); err != nil || offset < 0 {
			return nil, validate.Errorf("page_token %q is not one this service gave", req.PageToken)
		}
	}
	l, err := s.fileListing(ctx, rp, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_FILES,
		RecoveryPointId: rp.Id, Path: p, FileOp: string(fileread.OpList), Offset: int64(offset), Length: int64(size)})
	if err != nil {
		return nil, err
	}
	out := &restorev1.ListRecoveryPointFilesResponse{Entries: l.Entries, TotalSize: l.Total}
	if next := offset + len(l.Entries); next < int(l.Total) {
		out.NextPageToken = strconv.Itoa(next)
	}
	return out, nil
}

// CreateFileDownload implements the RPC.
func (s *RecoveryPointService) CreateFileDownload(ctx context.Context, req *restorev1.CreateFileDownloadRequest) (*restorev1.CreateFileDownloadResponse, error) {
	if _, _, err := filePath(req.Path); err != nil {
		return nil, err
	}
	rp, err := visibleRecoveryPoint(s.Deps, ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return s.FileDownload(ctx, rp, req.Path)
}

// FileDownload makes a download link of a path of rp (the caller has
// checked that it may). The path is looked up first, so a link is only
// made for a file or a directory that is there.
func (s *RecoveryPointService) FileDownload(ctx context.Context, rp *restorev1.RecoveryPoint, reqPath string) (*restorev1.CreateFileDownloadResponse, error) {
	p, parts, err := filePath(reqPath)
	if err != nil {
		return nil, err
	}
	if len(parts) < 2 {
		return nil, validate.Errorf("path %q: name a file or directory of a volume (/DISK/VOLUME/...): list / and /DISK for them", reqPath)
	}
	l, err := s.fileListing(ctx, rp, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_FILES,
		RecoveryPointId: rp.Id, Path: p, FileOp: string(fileread.OpStat)})
	if err != nil {
		return nil, err
	}
	if len(l.Entries) != 1 {
		return nil, status.Errorf(codes.Internal, "the host described %s with %d entries", p, len(l.Entries))
	}
	e := l.Entries[0]
	hosts, err := s.fileHosts(rp)
	if err != nil {
		return nil, err
	}
	g := DownloadGrant{Tenant: rp.Tenant, HostID: hosts[0], RecoveryPointID: rp.Id, Path: p, FileName: path.Base(p), Size: e.SizeBytes}
	switch e.Type {
	case restorev1.FileType_FILE_TYPE_FILE:
	case restorev1.FileType_FILE_TYPE_DIRECTORY:
		g.Archive, g.Size = true, 0
		g.FileName = strings.Trim(path.Base(p), "/") + ".tar"
	case restorev1.FileType_FILE_TYPE_SYMLINK:
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a symbolic link to %q, which file restore never follows: download the path it names inside the recovery point", p, e.LinkTarget)
	default:
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not a regular file or a directory (a device, FIFO or socket): nothing to download", p)
	}
	now := s.Now()
	expire := now.Add(DownloadTTL)
	tok, err := s.Downloads.links.mint(g, expire, now)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "download token: %v", err)
	}
	s.Log.Info("file download link made", "recovery_point", rp.Id, "path", p, "archive", g.Archive, "expires", expire.Format(time.RFC3339))
	return &restorev1.CreateFileDownloadResponse{Url: s.linkURL(ctx, "/download/"+tok), ExpireTime: timestamppb.New(expire),
		FileName: g.FileName, SizeBytes: g.Size, Archive: g.Archive}, nil
}

// FileOpen is the tunnel request for a file download's bytes: from
// offset, n of them (0: to the end), or the whole archive.
func FileOpen(g DownloadGrant, offset, n int64) *restorev1.TunnelOpen {
	op := fileread.OpGet
	if g.Archive {
		op, offset, n = fileread.OpTar, 0, 0
	}
	return &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_FILES, RecoveryPointId: g.RecoveryPointID,
		Path: g.Path, FileOp: string(op), Offset: offset, Length: n}
}
