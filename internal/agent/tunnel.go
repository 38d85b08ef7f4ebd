package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/console"
	"github.com/restored/restored/internal/hypervisor"
	tunnelpkg "github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/version"
	"google.golang.org/protobuf/proto"
)

// restoreIDPattern is what a restore id looks like (a UUID): ids from the
// server become file and domain names, so nothing else is accepted.
var restoreIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// tunnel is the part of the agent that keeps a tunnel to the server open
// and serves the channels the server opens on it: screenshots, evidence,
// consoles and snapshot extents. It keeps no state of its own.
type tunnel struct {
	hostID    string
	ctl       *control
	obs       hypervisor.Observer
	caps      hypervisor.Set
	snapshots *snapshots
	ev        *evidence
	// images finds IMAGE restores' files (nil: the driver makes none);
	// exporter serves EXPORT restores (nil: the driver serves none).
	images   hypervisor.Imager
	exporter hypervisor.Exporter
	// files serves file-level restore.
	files *files
	log   *slog.Logger
}

// run keeps a tunnel open for the session, reopening it when it breaks.
func (t *tunnel) run(ctx context.Context, client restorev1.AgentServiceClient) {
	for ctx.Err() == nil {
		err := t.open(ctx, client)
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("tunnel ended; reopening", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (t *tunnel) open(ctx context.Context, client restorev1.AgentServiceClient) error {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Tunnel(tctx)
	if err != nil {
		return err
	}
	hello := &restorev1.TunnelFrame{Kind: &restorev1.TunnelFrame_Hello{Hello: &restorev1.TunnelHello{ProtocolVersion: version.AgentProtocol, HostId: t.hostID}}}
	if err := stream.Send(&restorev1.TunnelRequest{Frame: hello}); err != nil {
		return err
	}
	return tunnelpkg.ServeAgent(tctx, func() (*restorev1.TunnelFrame, error) {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return resp.GetFrame(), nil
	}, func(f *restorev1.TunnelFrame) error {
		return stream.Send(&restorev1.TunnelRequest{Frame: f})
	}, t.serveChannel)
}

// serveChannel answers one channel the server opened.
func (t *tunnel) serveChannel(ctx context.Context, open *restorev1.TunnelOpen, c *tunnelpkg.Channel) {
	switch open.Kind {
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EXTENTS:
		t.serveExtents(ctx, open, c)
		return
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_FILES:
		t.files.serve(ctx, open, c)
		return
	}
	if !restoreIDPattern.MatchString(open.RestoreId) {
		_ = c.CloseWith(fmt.Sprintf("%q is not a restore id", open.RestoreId), true)
		return
	}
	switch open.Kind {
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT:
		t.serveScreenshot(ctx, open.RestoreId, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE:
		t.serveEvidence(open.RestoreId, open.N, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE:
		t.serveConsole(ctx, open.RestoreId, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_IMAGE:
		t.serveImage(open, c)
	case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CHAP:
		t.serveCHAP(ctx, open.RestoreId, c)
	default:
		_ = c.CloseWith(fmt.Sprintf("this agent cannot open %s", open.Kind), false)
	}
}

func (t *tunnel) serveScreenshot(ctx context.Context, id string, c *tunnelpkg.Channel) {
	if err := t.caps.Need(hypervisor.Screenshots, "host "+t.hostID); err != nil {
		_ = c.CloseWith(err.Error(), false)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := t.obs.Screenshot(sctx, id)
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("no screenshot of restore %s on host %s: %v", id, t.hostID, err), errors.Is(err, hypervisor.ErrNoVM))
		return
	}
	raw, err := s.PNG()
	if err != nil {
		_ = c.CloseWith(err.Error(), false)
		return
	}
	_, _ = c.Write(raw)
	_ = c.Close()
}

func (t *tunnel) serveEvidence(id string, n int32, c *tunnelpkg.Channel) {
	b, err := os.ReadFile(t.ev.screenshot(id, n))
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("screenshot %d of verification %s is not kept on host %s (retention %s)", n, id, t.hostID, t.ev.retention), true)
		return
	}
	_, _ = c.Write(b)
	_ = c.Close()
}

// serveConsole connects the channel to the VM's console: the agent
// authenticates with the VM's password and offers the other end an
// authenticated RFB session; then bytes flow as they are.
func (t *tunnel) serveConsole(ctx context.Context, id string, c *tunnelpkg.Channel) {
	if err := t.caps.Need(hypervisor.Console, "host "+t.hostID); err != nil {
		_ = c.CloseWith(err.Error(), false)
		return
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ep, err := t.obs.Console(vctx, id)
	cancel()
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("restore %s has no console on host %s: %v", id, t.hostID, err), errors.Is(err, hypervisor.ErrNoVM))
		return
	}
	vnc, err := console.DialVNC(ep.Network, ep.Address, ep.Password)
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("console of restore %s: %v", id, err), false)
		return
	}
	if err := console.OfferNoAuth(c); err != nil {
		vnc.Close()
		_ = c.CloseWith(fmt.Sprintf("console handshake: %v", err), false)
		return
	}
	t.log.Info("console open", "restore", id)
	console.Relay(c, vnc)
	t.log.Info("console closed", "restore", id)
}

// serveExtents answers a page of a snapshot disk's extents, encoded as a
// ListSnapshotExtentsResponse.
func (t *tunnel) serveExtents(ctx context.Context, open *restorev1.TunnelOpen, c *tunnelpkg.Channel) {
	if !restoreIDPattern.MatchString(open.SnapshotId) {
		_ = c.CloseWith(fmt.Sprintf("%q is not a snapshot id", open.SnapshotId), true)
		return
	}
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	page, err := t.snapshots.extentsPage(ectx, open.SnapshotId, open.Disk, open.Offset, int(max(open.N, 1)))
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
