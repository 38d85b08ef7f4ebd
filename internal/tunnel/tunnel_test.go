package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// pipe connects a hub and an agent in memory, as the gRPC stream does.
func pipe(t *testing.T, handle Handler) (*Hub, func()) {
	t.Helper()
	toAgent, toServer := make(chan *restorev1.TunnelFrame, 16), make(chan *restorev1.TunnelFrame, 16)
	gone := make(chan struct{})
	recv := func(ch chan *restorev1.TunnelFrame) func() (*restorev1.TunnelFrame, error) {
		return func() (*restorev1.TunnelFrame, error) {
			select {
			case f := <-ch:
				return f, nil
			case <-gone:
				return nil, errors.New("stream ended")
			}
		}
	}
	send := func(ch chan *restorev1.TunnelFrame) func(*restorev1.TunnelFrame) error {
		return func(f *restorev1.TunnelFrame) error {
			select {
			case ch <- f:
				return nil
			case <-gone:
				return errors.New("stream ended")
			}
		}
	}
	hub := NewHub()
	go func() { _ = hub.Serve("h1", recv(toServer), send(toAgent)) }()
	go func() { _ = ServeAgent(context.Background(), recv(toAgent), send(toServer), handle) }()
	deadline := time.Now().Add(5 * time.Second)
	for !hub.Connected("h1") {
		if time.Now().After(deadline) {
			t.Fatal("the tunnel never registered")
		}
		time.Sleep(time.Millisecond)
	}
	return hub, func() { close(gone) }
}

func TestChannelsCarryDataBothWaysAndEndCleanly(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<10) // 160 KiB: several frames
	hub, end := pipe(t, func(ctx context.Context, open *restorev1.TunnelOpen, c *Channel) {
		switch open.Kind {
		case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT:
			_, _ = c.Write(big)
			_ = c.Close()
		case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE:
			_ = c.CloseWith("screenshot 9 of "+open.RestoreId+" is not on this host", true)
		case restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE:
			_, _ = io.Copy(c, c) // echo until the server closes
		}
	})
	defer end()
	ctx := context.Background()

	c, err := hub.Open(ctx, "h1", &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_SCREENSHOT, RestoreId: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, %v; want the %d sent", len(got), err, len(big))
	}

	c, _ = hub.Open(ctx, "h1", &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EVIDENCE, RestoreId: "r1", N: 9})
	_, err = io.ReadAll(c)
	var re *RemoteError
	if !errors.As(err, &re) || !re.NotFound {
		t.Fatalf("err %v, want a not-found RemoteError", err)
	}

	c, _ = hub.Open(ctx, "h1", &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE, RestoreId: "r1"})
	for _, msg := range []string{"RFB 003.008\n", "keys"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v", buf, err)
		}
	}
	_ = c.Close()

	if _, err := hub.Open(ctx, "h2", &restorev1.TunnelOpen{}); !errors.Is(err, ErrNoTunnel) {
		t.Fatalf("a host without a tunnel: %v", err)
	}
}

func TestAChannelEndsWhenTheTunnelDrops(t *testing.T) {
	started := make(chan struct{})
	hub, end := pipe(t, func(ctx context.Context, open *restorev1.TunnelOpen, c *Channel) {
		close(started)
		<-ctx.Done() // the agent's handler is told too
	})
	c, err := hub.Open(context.Background(), "h1", &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	end()
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("read after the drop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read hung after the tunnel dropped")
	}
}
