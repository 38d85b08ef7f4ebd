package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
	if !lifecycle.HasScreen(x.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: only a BOOTING or RUNNING restore has a screen", x.Id, x.State)
	}
	data, err := s.fetch(ctx, x.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT, RestoreId: x.Id},
		restorev1.RestoreService_GetRestoreScreenshot_FullMethodName, req)
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
	data, err := s.fetch(ctx, v.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE, RestoreId: v.Id, N: req.N},
		restorev1.VerificationService_GetVerificationScreenshot_FullMethodName, req)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetVerificationScreenshotResponse{ContentType: "image/png", Data: data}, nil
}

// fetch reads what a host's agent answers on a channel. When the host's
// tunnel is on another server, the call is passed to the other servers.
func (d *Deps) fetch(ctx context.Context, hostID string, open *restorev1.TunnelOpen, method string, req proto.Message) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := d.Tunnels.Open(ctx, hostID, open)
	if errors.Is(err, tunnel.ErrNoTunnel) {
		if d.Peers != nil && !wasForwarded(ctx) {
			resp, perr := d.Peers.askPeers(ctx, method, req)
			if r, ok := resp.(interface{ GetData() []byte }); perr == nil && ok {
				return r.GetData(), nil
			}
			if perr == nil { // the channel's data is the encoded response
				return proto.Marshal(resp)
			}
			if status.Code(perr) != codes.Unavailable {
				return nil, perr
			}
		}
		return nil, status.Errorf(codes.Unavailable, "host %s's agent is not connected to any server right now; retry when it is back", hostID)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.CloseWith("", false) })
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

// askPeers runs a call on the other servers in turn until one has the
// host's tunnel (answers something other than Unavailable).
func (f *Forwarder) askPeers(ctx context.Context, method string, req proto.Message) (proto.Message, error) {
	resp, err := responseFor(method)
	if err != nil {
		return nil, err
	}
	last := status.Error(codes.Unavailable, "no other server")
	for _, srv := range f.deps.Store.Read(nil).Servers() {
		if srv.Id == f.deps.ServerID || srv.GrpcAddress == "" {
			continue
		}
		conn, err := f.conn(srv.GrpcAddress)
		if err != nil {
			continue
		}
		err = conn.Invoke(forwardedContext(ctx, f.deps.ServerID), method, req, resp)
		if err == nil {
			return resp, nil
		}
		if status.Code(err) != codes.Unavailable {
			return nil, err
		}
		last = fmt.Errorf("server %s: %w", srv.Id, err)
	}
	return nil, last
}
