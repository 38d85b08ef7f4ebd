package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ErrHostNotConnected: no server of the cluster holds the host's tunnel.
var ErrHostNotConnected = errors.New("the host's agent is not connected to any server of the cluster right now; retry when it is back")

// relayChunk is the largest data frame a relay sends (a tunnel's chunk).
const relayChunk = 256 << 10

// OpenChannel opens a channel to a host's agent through whichever server
// holds its tunnel: this one, or another one found by asking each in turn
// over ClusterService.Relay (mutual TLS with server certificates). Every
// caller that talks to an agent (console, screenshots, evidence, extents)
// goes through here, so it works through any server of the cluster.
func (d *Deps) OpenChannel(ctx context.Context, hostID string, open *restorev1.TunnelOpen) (io.ReadWriteCloser, error) {
	c, err := d.Tunnels.Open(ctx, hostID, open)
	if !errors.Is(err, tunnel.ErrNoTunnel) {
		return c, err
	}
	if d.Peers == nil {
		return nil, fmt.Errorf("host %s: %w", hostID, ErrHostNotConnected)
	}
	return d.Peers.relay(ctx, hostID, open)
}

// relay asks the other servers to open the channel on their tunnel of the
// host: first the one its agent registered through, then the others.
func (f *Forwarder) relay(ctx context.Context, hostID string, open *restorev1.TunnelOpen) (io.ReadWriteCloser, error) {
	r := f.deps.Store.Read(nil)
	servers := r.Servers()
	if h := r.Host(hostID); h != nil {
		slices.SortStableFunc(servers, func(a, b *restorev1.Server) int {
			return cmp.Compare(b2i(b.Id == h.ServerId), b2i(a.Id == h.ServerId))
		})
	}
	for _, srv := range servers {
		if srv.Id == f.deps.ServerID || srv.GrpcAddress == "" {
			continue
		}
		conn, err := f.conn(srv.GrpcAddress)
		if err != nil {
			continue
		}
		c, err := openRelay(ctx, raftv1.NewClusterServiceClient(conn), f.deps.ServerID, hostID, open)
		if err == nil {
			return c, nil
		}
		if status.Code(err) != codes.Unavailable {
			return nil, err
		}
	}
	return nil, fmt.Errorf("host %s: %w", hostID, ErrHostNotConnected)
}

func openRelay(ctx context.Context, client raftv1.ClusterServiceClient, self, hostID string, open *restorev1.TunnelOpen) (io.ReadWriteCloser, error) {
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, mdkeys.Forwarded, self))
	stream, err := client.Relay(sctx)
	if err == nil {
		err = stream.Send(&raftv1.RelayRequest{Kind: &raftv1.RelayRequest_Open{Open: &raftv1.RelayOpen{HostId: hostID, Open: open}}})
	}
	var first *raftv1.RelayResponse
	if err == nil {
		first, err = stream.Recv()
	}
	if err == nil && first.GetOpened() == nil {
		err = status.Error(codes.Internal, "relay: the first frame is not opened")
	}
	if err != nil {
		cancel()
		if err == io.EOF {
			err = status.Error(codes.Unavailable, "relay ended before it opened")
		}
		return nil, err
	}
	return &relayConn{stream: stream, cancel: cancel}, nil
}

// relayConn is a channel relayed through another server.
type relayConn struct {
	stream raftv1.ClusterService_RelayClient
	cancel context.CancelFunc
	buf    []byte
	sendMu sync.Mutex
}

// Read returns the agent's data; io.EOF when it closed cleanly, a
// *tunnel.RemoteError when it closed with an error.
func (c *relayConn) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		m, err := c.stream.Recv()
		if err != nil {
			return 0, fromRelayStatus(err)
		}
		c.buf = m.GetData()
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (c *relayConn) Write(p []byte) (int, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	sent := 0
	for len(p) > 0 {
		n := min(len(p), relayChunk)
		if err := c.stream.Send(&raftv1.RelayRequest{Kind: &raftv1.RelayRequest_Data{Data: p[:n]}}); err != nil {
			return sent, err
		}
		sent += n
		p = p[n:]
	}
	return sent, nil
}

// Close ends the relay (the holding server closes the channel).
func (c *relayConn) Close() error {
	c.sendMu.Lock()
	err := c.stream.CloseSend()
	c.sendMu.Unlock()
	c.cancel()
	return err
}

// The agent's close with an error crosses the relay as a status: NotFound
// for something not found, Aborted for any other.
func toRelayStatus(hostID string, err error) error {
	var re *tunnel.RemoteError
	switch {
	case err == nil || err == io.EOF:
		return nil
	case errors.As(err, &re) && re.NotFound:
		return status.Error(codes.NotFound, re.Msg)
	case errors.As(err, &re):
		return status.Error(codes.Aborted, re.Msg)
	}
	return status.Errorf(codes.Unavailable, "host %s: %v", hostID, err)
}

func fromRelayStatus(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	switch s, _ := status.FromError(err); s.Code() {
	case codes.NotFound:
		return &tunnel.RemoteError{Msg: s.Message(), NotFound: true}
	case codes.Aborted:
		return &tunnel.RemoteError{Msg: s.Message()}
	}
	return err
}

// Relay implements the RPC: it serves a channel on a tunnel held here for
// the server that asked (the interceptor checked its server certificate).
func (s *ClusterService) Relay(stream raftv1.ClusterService_RelayServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	o := first.GetOpen()
	if o == nil || o.Open == nil {
		return validate.Errorf("the first relay frame must say what to open")
	}
	if err := validate.DNSLabel("host_id", o.HostId); err != nil {
		return err
	}
	ctx := stream.Context()
	c, err := s.Tunnels.Open(ctx, o.HostId, o.Open)
	if errors.Is(err, tunnel.ErrNoTunnel) {
		return status.Errorf(codes.Unavailable, "host %s has no tunnel to server %s", o.HostId, s.ServerID)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "host %s: %v", o.HostId, err)
	}
	defer c.Close()
	if err := stream.Send(&raftv1.RelayResponse{Kind: &raftv1.RelayResponse_Opened{Opened: &raftv1.RelayOpened{ServerId: s.ServerID}}}); err != nil {
		return err
	}
	// The asking server's data to the agent; its end ends the channel.
	go func() {
		defer c.Close()
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			if d := m.GetData(); len(d) > 0 {
				if _, err := c.Write(d); err != nil {
					return
				}
			}
		}
	}()
	buf := make([]byte, relayChunk)
	for {
		n, rerr := c.Read(buf)
		if n > 0 {
			if err := stream.Send(&raftv1.RelayResponse{Kind: &raftv1.RelayResponse_Data{Data: buf[:n]}}); err != nil {
				return err
			}
		}
		if rerr != nil {
			return toRelayStatus(o.HostId, rerr)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
