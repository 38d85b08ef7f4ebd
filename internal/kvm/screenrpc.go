package kvm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/digitalocean/go-libvirt/socket"
)

// libvirt's remote program and the few procedures a screenshot needs
// (src/remote/remote_protocol.x).
const (
	remoteProgram        = 0x20008086
	procConnectOpen      = 1
	procConnectClose     = 2
	procDomainLookupName = 23
	procAuthList         = 66
	procAuthPolkit       = 70
	procDomainScreenshot = 211
	authPolkit           = 2

	maxScreenshotBytes = 64 << 20
)

// screenConn is a libvirt RPC connection used only to take screenshots.
//
// go-libvirt's generic client cannot receive a download stream reliably:
// libvirtd may send the stream's data before the call's reply, and go-libvirt
// then takes the data for the reply (the picture is lost) or deadlocks the
// connection's reader on the packet that follows (measured here: about one
// screenshot in ten). screenConn reuses go-libvirt's framing (package socket)
// but keeps every packet of the current call in arrival order with its type,
// so the reply, the stream data, the end of the stream and the confirmation
// of our finish are told apart as libvirt's own client does.
type screenConn struct {
	sock *socket.Socket

	mu      sync.Mutex
	serial  int32
	current int32
	queue   []rpcPacket
	ready   chan struct{}
}

type rpcPacket struct {
	typ, status uint32
	payload     []byte
}

// rpcError is an error libvirtd answered with.
type rpcError struct {
	Code    uint32
	Message string
}

func (e *rpcError) Error() string { return fmt.Sprintf("libvirt error %d: %s", e.Code, e.Message) }

type dialFunc func() (net.Conn, error)

func (f dialFunc) Dial() (net.Conn, error) { return f() }

// openScreenConn dials libvirtd, authenticates and opens qemu:///system.
func openScreenConn(ctx context.Context, dial func() (net.Conn, error)) (*screenConn, error) {
	c := &screenConn{ready: make(chan struct{}, 1)}
	c.sock = socket.New(dialFunc(dial), c)
	if err := c.sock.Connect(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.sock.Disconnect() })
	defer stop()
	auths, err := c.call(ctx, procAuthList, nil)
	if err != nil {
		c.abort()
		return nil, fmt.Errorf("auth list: %w", err)
	}
	if r := bytes.NewReader(auths); r.Len() >= 4 {
		n, _ := getUint32(r)
		for i := uint32(0); i < n && r.Len() >= 4; i++ {
			if a, _ := getUint32(r); a == authPolkit {
				if _, err := c.call(ctx, procAuthPolkit, nil); err != nil {
					c.abort()
					return nil, fmt.Errorf("polkit auth: %w", err)
				}
			}
		}
	}
	var open bytes.Buffer
	putUint32(&open, 1) // remote_string present
	putString(&open, "qemu:///system")
	putUint32(&open, 0) // flags
	if _, err := c.call(ctx, procConnectOpen, open.Bytes()); err != nil {
		c.abort()
		return nil, fmt.Errorf("connect open: %w", err)
	}
	return c, nil
}

// Route receives every packet from go-libvirt's socket reader. It never
// blocks: packets of the current call are queued, others are dropped.
func (c *screenConn) Route(h *socket.Header, buf []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.Program != remoteProgram || h.Serial != c.current {
		return
	}
	c.queue = append(c.queue, rpcPacket{typ: h.Type, status: h.Status, payload: buf})
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *screenConn) begin() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	c.current = c.serial
	c.queue = nil
	return c.current
}

func (c *screenConn) next(ctx context.Context) (rpcPacket, error) {
	gone := c.sock.Disconnected()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			p := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return p, nil
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			return rpcPacket{}, fmt.Errorf("%w (%v)", ErrTimeout, ctx.Err())
		case <-gone:
			c.mu.Lock()
			empty := len(c.queue) == 0
			c.mu.Unlock()
			if empty {
				return rpcPacket{}, errors.New("libvirtd closed the connection")
			}
		}
	}
}

// call sends one call and returns its reply's payload.
func (c *screenConn) call(ctx context.Context, proc uint32, args []byte) ([]byte, error) {
	serial := c.begin()
	if err := c.sock.SendPacket(serial, proc, remoteProgram, args, socket.Call, socket.StatusOK); err != nil {
		return nil, err
	}
	for {
		p, err := c.next(ctx)
		if err != nil {
			return nil, err
		}
		if p.status == socket.StatusError {
			return nil, decodeRPCError(p.payload)
		}
		if p.typ == socket.Reply {
			return p.payload, nil
		}
	}
}

// screenshot takes a screenshot of the named domain and returns the
// encoded picture exactly as libvirtd streamed it.
func (c *screenConn) screenshot(ctx context.Context, name string) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.sock.Disconnect() })
	defer stop()
	var args bytes.Buffer
	putString(&args, name)
	dom, err := c.call(ctx, procDomainLookupName, args.Bytes())
	if err != nil {
		return nil, err
	}
	args.Reset()
	args.Write(dom)     // remote_nonnull_domain, as libvirtd returned it
	putUint32(&args, 0) // screen
	putUint32(&args, 0) // flags
	serial := c.begin()
	if err := c.sock.SendPacket(serial, procDomainScreenshot, remoteProgram, args.Bytes(), socket.Call, socket.StatusOK); err != nil {
		return nil, err
	}
	var (
		picture              bytes.Buffer
		replied, ended, done bool
	)
	for !(replied && done) {
		p, err := c.next(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case p.status == socket.StatusError:
			return nil, decodeRPCError(p.payload)
		case p.typ == socket.Reply && len(p.payload) > 0:
			replied = true // the mime type: the bytes say what they are
		case len(p.payload) > 0:
			if picture.Len()+len(p.payload) > maxScreenshotBytes {
				return nil, fmt.Errorf("screenshot larger than %d bytes", maxScreenshotBytes)
			}
			picture.Write(p.payload)
		case !ended:
			// End of the stream: finish it, as virStreamFinish does.
			ended = true
			if err := c.sock.SendPacket(serial, procDomainScreenshot, remoteProgram, nil, socket.Stream, socket.StatusOK); err != nil {
				return nil, err
			}
		default:
			done = true // libvirtd confirmed our finish
		}
	}
	return picture.Bytes(), nil
}

// close says goodbye to libvirtd (briefly) and closes the socket.
func (c *screenConn) close(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { _ = c.sock.Disconnect() })
	defer stop()
	_, _ = c.call(ctx, procConnectClose, nil)
	_ = c.sock.Disconnect()
}

func (c *screenConn) abort() { _ = c.sock.Disconnect() }

func putUint32(b *bytes.Buffer, v uint32) {
	var w [4]byte
	binary.BigEndian.PutUint32(w[:], v)
	b.Write(w[:])
}

func putString(b *bytes.Buffer, s string) {
	putUint32(b, uint32(len(s)))
	b.WriteString(s)
	b.Write(make([]byte, (4-len(s)%4)%4))
}

func getUint32(r *bytes.Reader) (uint32, error) {
	var w [4]byte
	if _, err := r.Read(w[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(w[:]), nil
}

// decodeRPCError reads the code and message of a remote_error.
func decodeRPCError(b []byte) error {
	r := bytes.NewReader(b)
	code, err := getUint32(r)
	if err != nil {
		return errors.New("libvirt error (unreadable)")
	}
	_, _ = getUint32(r) // domain
	e := &rpcError{Code: code}
	if present, _ := getUint32(r); present == 1 {
		if n, err := getUint32(r); err == nil && int(n) <= r.Len() {
			msg := make([]byte, n)
			_, _ = r.Read(msg)
			e.Message = string(msg)
		}
	}
	return e
}
