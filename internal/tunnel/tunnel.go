// Package tunnel multiplexes channels over the agent's Tunnel stream. The
// agent dials out and keeps the stream open; the server opens channels on it
// (a live screenshot, a kept screenshot, a console) and the agent serves
// them. Hosts need no inbound port, and the server reaches a host through
// the same authenticated connection the agent already uses.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// chunk is the largest data frame: large enough that a bulk transfer (an
// image download) is not bound by per-message costs (bench-export: 32 KiB
// frames moved 150 MiB/s, 256 KiB ones 260 MiB/s).
const chunk = 256 << 10

// inFrames is how many received frames a channel holds for its reader
// (at most 4 MiB): a slow reader holds the tunnel up only past that.
const inFrames = 16

// RemoteError is a channel closed by the other side with an error.
type RemoteError struct {
	Msg      string
	NotFound bool
}

func (e *RemoteError) Error() string { return e.Msg }

// ErrClosed is returned on a channel or tunnel that has ended.
var ErrClosed = errors.New("tunnel channel closed")

// mux is one tunnel stream's channels.
type mux struct {
	sendMu sync.Mutex
	send   func(*restorev1.TunnelFrame) error

	mu    sync.Mutex
	chans map[uint64]*Channel
	next  uint64
	done  chan struct{}
	err   error
}

func newMux(send func(*restorev1.TunnelFrame) error) *mux {
	return &mux{send: send, chans: map[uint64]*Channel{}, done: make(chan struct{})}
}

func (m *mux) write(f *restorev1.TunnelFrame) error {
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	select {
	case <-m.done:
		return ErrClosed
	default:
	}
	return m.send(f)
}

func (m *mux) channel(id uint64) *Channel {
	c := &Channel{id: id, m: m, in: make(chan []byte, inFrames), remoteDone: make(chan struct{})}
	m.mu.Lock()
	m.chans[id] = c
	m.mu.Unlock()
	return c
}

// dispatch hands a received frame to its channel; it blocks while the
// channel's buffer is full (back pressure for the whole tunnel).
func (m *mux) dispatch(f *restorev1.TunnelFrame) {
	m.mu.Lock()
	c := m.chans[f.Channel]
	m.mu.Unlock()
	if c == nil {
		return
	}
	switch k := f.Kind.(type) {
	case *restorev1.TunnelFrame_Data:
		select {
		case c.in <- k.Data:
		case <-c.remoteDone:
		case <-c.localDone():
		case <-m.done:
		}
	case *restorev1.TunnelFrame_Close:
		c.remoteClose(k.Close)
	}
}

// stop ends every channel: the stream is gone.
func (m *mux) stop(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		return
	default:
	}
	m.err = err
	close(m.done)
}

// Channel is one conversation over a tunnel: an io.ReadWriteCloser.
type Channel struct {
	id uint64
	m  *mux

	in         chan []byte
	buf        []byte
	remoteOnce sync.Once
	remoteDone chan struct{}
	remoteErr  error

	localOnce sync.Once
	local     chan struct{}
	localMu   sync.Mutex
}

func (c *Channel) localDone() chan struct{} {
	c.localMu.Lock()
	defer c.localMu.Unlock()
	if c.local == nil {
		c.local = make(chan struct{})
	}
	return c.local
}

func (c *Channel) remoteClose(cl *restorev1.TunnelClose) {
	c.remoteOnce.Do(func() {
		if cl.GetError() != "" {
			c.remoteErr = &RemoteError{Msg: cl.Error, NotFound: cl.NotFound}
		}
		close(c.remoteDone)
	})
}

// Read returns received data; io.EOF after the other side closed cleanly,
// its *RemoteError when it closed with one.
func (c *Channel) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		select {
		case b := <-c.in:
			c.buf = b
		case <-c.remoteDone:
			select {
			case b := <-c.in: // data sent before the close comes first
				c.buf = b
				continue
			default:
			}
			if c.remoteErr != nil {
				return 0, c.remoteErr
			}
			return 0, io.EOF
		case <-c.localDone():
			return 0, ErrClosed
		case <-c.m.done:
			return 0, fmt.Errorf("%w: %v", ErrClosed, c.m.err)
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Write sends data in frames of at most 32 KiB.
func (c *Channel) Write(p []byte) (int, error) {
	sent := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		data := append([]byte(nil), p[:n]...)
		if err := c.m.write(&restorev1.TunnelFrame{Channel: c.id, Kind: &restorev1.TunnelFrame_Data{Data: data}}); err != nil {
			return sent, err
		}
		sent += n
		p = p[n:]
	}
	return sent, nil
}

// Close ends the channel cleanly.
func (c *Channel) Close() error { return c.CloseWith("", false) }

// CloseWith ends the channel, telling the other side why (msg empty: no
// error) and whether it was because something was not found.
func (c *Channel) CloseWith(msg string, notFound bool) error {
	var err error
	c.localOnce.Do(func() {
		err = c.m.write(&restorev1.TunnelFrame{Channel: c.id, Kind: &restorev1.TunnelFrame_Close{Close: &restorev1.TunnelClose{Error: msg, NotFound: notFound}}})
		close(c.localDone())
		c.m.mu.Lock()
		delete(c.m.chans, c.id)
		c.m.mu.Unlock()
	})
	return err
}

// Context returns a context that ends when the channel ends either way.
func (c *Channel) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-c.remoteDone:
		case <-c.localDone():
		case <-c.m.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}
