package tunnel

import (
	"context"
	"errors"
	"sync"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// ErrNoTunnel is returned when the host has no tunnel to this server.
var ErrNoTunnel = errors.New("the host's agent has no tunnel to this server")

// Hub is the server side: the tunnels of the hosts connected here.
type Hub struct {
	mu    sync.Mutex
	hosts map[string]*mux
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{hosts: map[string]*mux{}} }

// Serve runs one host's tunnel until its stream ends. A newer tunnel of the
// same host replaces an older one.
func (h *Hub) Serve(hostID string, recv func() (*restorev1.TunnelFrame, error), send func(*restorev1.TunnelFrame) error) error {
	m := newMux(send)
	m.next = 1
	h.mu.Lock()
	old := h.hosts[hostID]
	h.hosts[hostID] = m
	h.mu.Unlock()
	if old != nil {
		old.stop(errors.New("replaced by a newer tunnel"))
	}
	defer func() {
		h.mu.Lock()
		if h.hosts[hostID] == m {
			delete(h.hosts, hostID)
		}
		h.mu.Unlock()
	}()
	for {
		f, err := recv()
		if err != nil {
			m.stop(err)
			return err
		}
		m.dispatch(f)
	}
}

// Connected says whether the host has a tunnel here.
func (h *Hub) Connected(hostID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hosts[hostID] != nil
}

// Open opens a channel to the host's agent.
func (h *Hub) Open(ctx context.Context, hostID string, open *restorev1.TunnelOpen) (*Channel, error) {
	h.mu.Lock()
	m := h.hosts[hostID]
	h.mu.Unlock()
	if m == nil {
		return nil, ErrNoTunnel
	}
	m.mu.Lock()
	id := m.next
	m.next++
	m.mu.Unlock()
	c := m.channel(id)
	if err := m.write(&restorev1.TunnelFrame{Channel: id, Kind: &restorev1.TunnelFrame_Open{Open: open}}); err != nil {
		_ = c.CloseWith("", false)
		return nil, err
	}
	return c, nil
}

// Handler serves one channel the server opened (agent side). It must close
// the channel when done.
type Handler func(ctx context.Context, open *restorev1.TunnelOpen, c *Channel)

// ServeAgent runs the agent side of a tunnel until its stream ends: each
// channel the server opens is handled in its own goroutine.
func ServeAgent(ctx context.Context, recv func() (*restorev1.TunnelFrame, error), send func(*restorev1.TunnelFrame) error, handle Handler) error {
	m := newMux(send)
	defer m.stop(context.Canceled)
	for {
		f, err := recv()
		if err != nil {
			m.stop(err)
			return err
		}
		if open := f.GetOpen(); open != nil {
			c := m.channel(f.Channel)
			go func() {
				cctx, cancel := c.Context(ctx)
				defer cancel()
				handle(cctx, open, c)
			}()
			continue
		}
		m.dispatch(f)
	}
}
