package api

import (
	"context"
	"errors"
	"io"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxScreenshotBytes bounds a screenshot fetched from a host.
const maxScreenshotBytes = 16 << 20

// GetRestoreScreenshot implements the RPC: a live screenshot of a restore
// that has a domain, taken by its host's agent through the tunnel.
func (s *RestoreService) GetRestoreScreenshot(ctx context.Context, req *restorev1.GetRestoreScreenshotRequest) (*restorev1.GetRestoreScreenshotResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if !lifecycle.HasVM(x.Mode) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is an %s restore: it has no VM and so no screen", x.Id, lifecycle.ModeName(x.Mode))
	}
	if !lifecycle.HasScreen(x.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: only a BOOTING or RUNNING restore has a screen", x.Id, x.State)
	}
	if err := needs(s.Store.Read(nil), x.HostId, hypervisor.Screenshots, "take screenshots"); err != nil {
		return nil, err
	}
	data, err := s.fetch(ctx, x.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT, RestoreId: x.Id})
	if err != nil {
		return nil, err
	}
	return &restorev1.GetRestoreScreenshotResponse{ContentType: "image/png", Data: data}, nil
}

// GetVerificationScreenshot implements the RPC: a screenshot kept by the
// host that ran the verification.
func (s *VerificationService) GetVerificationScreenshot(ctx context.Context, req *restorev1.GetVerificationScreenshotRequest) (*restorev1.GetVerificationScreenshotResponse, error) {
	if err := validate.Required("id", req.Id); err != nil {
		return nil, err
	}
	v := s.Store.Read(nil).Verification(req.Id)
	if v == nil || !principal(ctx).Sees(v.Tenant) {
		return nil, status.Errorf(codes.NotFound, "verification %q not found", req.Id)
	}
	if req.N < 1 || int(req.N) > len(v.Screenshots) {
		return nil, status.Errorf(codes.NotFound, "verification %s has screenshots 1 to %d, not %d", v.Id, len(v.Screenshots), req.N)
	}
	data, err := s.fetch(ctx, v.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE, RestoreId: v.Id, N: req.N})
	if err != nil {
		return nil, err
	}
	return &restorev1.GetVerificationScreenshotResponse{ContentType: "image/png", Data: data}, nil
}

// fetch reads what a host's agent answers on a channel, through whichever
// server holds the host's tunnel.
func (d *Deps) fetch(ctx context.Context, hostID string, open *restorev1.TunnelOpen) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := d.OpenChannel(ctx, hostID, open)
	if errors.Is(err, ErrHostNotConnected) {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	data, err := io.ReadAll(io.LimitReader(c, maxScreenshotBytes+1))
	_ = c.Close()
	var re *tunnel.RemoteError
	switch {
	case errors.As(err, &re) && re.NotFound:
		return nil, status.Error(codes.NotFound, re.Msg)
	case errors.As(err, &re):
		return nil, status.Errorf(codes.Unavailable, "host %s: %s", hostID, re.Msg)
	case ctx.Err() != nil:
		return nil, status.Errorf(codes.DeadlineExceeded, "host %s did not answer within 20s", hostID)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
	case len(data) > maxScreenshotBytes:
		return nil, status.Errorf(codes.Internal, "host %s sent more than %d bytes", hostID, maxScreenshotBytes)
	}
	return data, nil
}
