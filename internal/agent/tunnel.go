package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/console"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/version"
	"github.com/restored/restored/internal/vmspec"
	"google.golang.org/protobuf/proto"
)

// restoreIDPattern is what a restore id looks like (a UUID): ids from the
// server become file and domain names, so nothing else is accepted.
var restoreIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// tunnels keeps a tunnel to the server open for the session, reopening it
// when it breaks, and serves the channels the server opens.
func (a *Agent) tunnels(ctx context.Context, client restorev1.AgentServiceClient) {
	for ctx.Err() == nil {
		err := a.tunnel(ctx, client)
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("tunnel ended; reopening", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) tunnel(ctx context.Context, client restorev1.AgentServiceClient) error {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Tunnel(a.ctx(tctx))
	if err != nil {
		return err
	}
	hello := &restorev1.TunnelFrame{Kind: &restorev1.TunnelFrame_Hello{Hello: &restorev1.TunnelHello{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID}}}
	if err := stream.Send(&restorev1.TunnelRequest{Frame: hello}); err != nil {
		return err
	}
	return tunnel.ServeAgent(tctx, func() (*restorev1.TunnelFrame, error) {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return resp.GetFrame(), nil
	}, func(f *restorev1.TunnelFrame) error {
		return stream.Send(&restorev1.TunnelRequest{Frame: f})
	}, a.serveChannel)
}

// serveChannel answers one channel the server opened.
func (a *Agent) serveChannel(ctx context.Context, open *restorev1.TunnelOpen, c *tunnel.Channel) {
	if open.Kind == restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EXTENTS {
		a.serveExtents(ctx, open, c)
		return
	}
	if !restoreIDPattern.MatchString(open.RestoreId) {
		_ = c.CloseWith(fmt.Sprintf("%q is not a restore id", open.RestoreId), true)
		return
	}
	switch open.Kind {
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT:
		a.serveScreenshot(ctx, open.RestoreId, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE:
		a.serveEvidence(open.RestoreId, open.N, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE:
		a.serveConsole(ctx, open.RestoreId, c)
	default:
		_ = c.CloseWith(fmt.Sprintf("this agent cannot open %s", open.Kind), false)
	}
}

func (a *Agent) serveScreenshot(ctx context.Context, id string, c *tunnel.Channel) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	img, raw, err := a.drv.Screenshot(sctx, vmspec.DomainName(id))
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("no screenshot of restore %s on host %s: %v", id, a.cfg.HostID, err), kvm.IsNotFound(err))
		return
	}
	if raw, err = kvm.AsPNG(raw, img); err != nil {
		_ = c.CloseWith(err.Error(), false)
		return
	}
	_, _ = c.Write(raw)
	_ = c.Close()
}

func (a *Agent) serveEvidence(id string, n int32, c *tunnel.Channel) {
	b, err := os.ReadFile(filepath.Join(a.evidenceDir(id), fmt.Sprintf("%d.png", n)))
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("screenshot %d of verification %s is not kept on host %s (retention %s)", n, id, a.cfg.HostID, a.cfg.EvidenceRetention), true)
		return
	}
	_, _ = c.Write(b)
	_ = c.Close()
}

// serveConsole connects the channel to the domain's VNC server: the agent
// authenticates with the domain's password and offers the other end an
// authenticated RFB session; then bytes flow as they are.
func (a *Agent) serveConsole(ctx context.Context, id string, c *tunnel.Channel) {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	addr, password, err := a.drv.VNC(vctx, vmspec.DomainName(id))
	cancel()
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("restore %s has no console on host %s: %v", id, a.cfg.HostID, err), kvm.IsNotFound(err))
		return
	}
	vnc, err := console.DialVNC(addr, password)
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("console of restore %s: %v", id, err), false)
		return
	}
	if err := console.OfferNoAuth(c); err != nil {
		vnc.Close()
		_ = c.CloseWith(fmt.Sprintf("console handshake: %v", err), false)
		return
	}
	a.log.Info("console open", "restore", id)
	console.Relay(c, vnc)
	a.log.Info("console closed", "restore", id)
}

// serveExtents answers a page of a snapshot disk's extents, encoded as a
// ListSnapshotExtentsResponse.
func (a *Agent) serveExtents(ctx context.Context, open *restorev1.TunnelOpen, c *tunnel.Channel) {
	if !restoreIDPattern.MatchString(open.SnapshotId) {
		_ = c.CloseWith(fmt.Sprintf("%q is not a snapshot id", open.SnapshotId), true)
		return
	}
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	page, err := a.extentsPage(ectx, open.SnapshotId, open.Disk, open.Offset, int(max(open.N, 1)))
	var notHere errNotHere
	if err != nil {
		_ = c.CloseWith(err.Error(), errors.As(err, &notHere))
		return
	}
	b, err := proto.Marshal(page)
	if err != nil {
		_ = c.CloseWith(err.Error(), false)
		return
	}
	_, _ = c.Write(b)
	_ = c.Close()
}
