package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Gate is the TLS front of NBD servers that listen only on unix sockets
// (QEMU's, for a snapshot). A client must upgrade with NBD_OPT_STARTTLS
// before anything else; its certificate (checked by TLS) says which
// server it may reach (Backend), and only that one; NBD_OPT_LIST is
// refused, so export names are never handed out. After the handshake the
// gate relays bytes as they are.
type Gate struct {
	// TLS is the server side: its certificate, and the client certificates
	// it requires and checks.
	TLS *tls.Config
	// Backend says where the NBD server of this client's certificate
	// listens ("unix", path), or why it may reach none.
	Backend func(tls.ConnectionState) (network, address string, err error)
	Log     *slog.Logger
	// Served, when set, is told of the bytes sent to clients after their
	// handshake (metrics).
	Served func(n int64)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// handshakeLimit bounds a client's negotiation (not the transfer).
const handshakeLimit = 30 * time.Second

// Serve accepts clients on l until it is closed.
func (g *Gate) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		g.track(c, true)
		go func() {
			defer g.track(c, false)
			defer c.Close()
			if err := g.handle(c); err != nil && !errors.Is(err, io.EOF) {
				g.Log.Info("NBD client refused or gone", "client", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// CloseAll ends every client connection (the gate is going away).
func (g *Gate) CloseAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
	}
}

func (g *Gate) track(c net.Conn, add bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns = map[net.Conn]struct{}{}
	}
	if add {
		g.conns[c] = struct{}{}
	} else {
		delete(g.conns, c)
	}
}

// option is one option request as read.
type option struct {
	opt  uint32
	data []byte
}

func readOption(r io.Reader) (option, error) {
	var h struct {
		Magic    uint64
		Opt, Len uint32
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return option{}, err
	}
	if h.Magic != magicIHaveOpt {
		return option{}, fmt.Errorf("bad option magic %#x", h.Magic)
	}
	if h.Len > maxOptionBytes {
		return option{}, fmt.Errorf("option %d of %d bytes", h.Opt, h.Len)
	}
	o := option{opt: h.Opt, data: make([]byte, h.Len)}
	_, err := io.ReadFull(r, o.data)
	return o, err
}

func (o option) bytes() []byte {
	b := binary.BigEndian.AppendUint64(nil, magicIHaveOpt)
	b = binary.BigEndian.AppendUint32(b, o.opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.data)))
	return append(b, o.data...)
}

func reply(w io.Writer, opt, typ uint32, msg string) error {
	b := binary.BigEndian.AppendUint64(nil, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// greet sends the fixed newstyle greeting and reads the client's flags.
func greet(c io.ReadWriter) (uint32, error) {
	b := binary.BigEndian.AppendUint64(nil, magicNBD)
	b = binary.BigEndian.AppendUint64(b, magicIHaveOpt)
	b = binary.BigEndian.AppendUint16(b, flagFixedNewstyle|flagNoZeroes)
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	var flags uint32
	if err := binary.Read(c, binary.BigEndian, &flags); err != nil {
		return 0, err
	}
	if flags&flagFixedNewstyle == 0 {
		return 0, errors.New("the client does not speak fixed newstyle")
	}
	return flags, nil
}

func (g *Gate) handle(raw net.Conn) error {
	_ = raw.SetDeadline(time.Now().Add(handshakeLimit))
	flags, err := greet(raw)
	if err != nil {
		return err
	}
	// In plaintext only STARTTLS (and ABORT) are answered.
	for {
		o, err := readOption(raw)
		if err != nil {
			return err
		}
		switch o.opt {
		case optStartTLS:
			if err := reply(raw, o.opt, repAck, ""); err != nil {
				return err
			}
		case optAbort:
			_ = reply(raw, o.opt, repAck, "")
			return io.EOF
		case optExportName: // no reply is possible: hang up
			return errors.New("NBD_OPT_EXPORT_NAME without TLS")
		default:
			if err := reply(raw, o.opt, repErrTLSReqd, "this server takes only TLS: upgrade with NBD_OPT_STARTTLS"); err != nil {
				return err
			}
			continue
		}
		break
	}
	tc := tls.Server(raw, g.TLS)
	hctx, cancel := context.WithTimeout(context.Background(), handshakeLimit)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	client := bufio.NewReader(tc)
	network, address, berr := g.Backend(tc.ConnectionState())
	if berr != nil {
		return refuseAll(client, tc, berr)
	}
	backend, err := net.DialTimeout(network, address, 10*time.Second)
	if err != nil {
		return refuseAll(client, tc, fmt.Errorf("the export is not being served: %w", err))
	}
	defer backend.Close()
	_ = backend.SetDeadline(time.Now().Add(handshakeLimit))
	server := bufio.NewReader(backend)
	if err := joinBackend(server, backend, flags); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if err := g.negotiate(client, tc, server, backend); err != nil {
		return err
	}
	_ = raw.SetDeadline(time.Time{})
	_ = backend.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { _ = pump(backend, client, tc); done <- struct{}{} }()
	var toClient io.Writer = tc
	if g.Served != nil {
		toClient = countedWriter{w: tc, add: g.Served}
	}
	go func() { _ = pump(toClient, server, backend); done <- struct{}{} }()
	<-done
	return nil
}

// pumpBuffer is how much one read of a proxied connection takes: reads of
// a whole NBD reply at once become full TLS records (16 KiB), not one per
// 4 KiB that a bufio.Reader would hand over.
const pumpBuffer = 256 << 10

// pump copies what the handshake's reader holds already, then the
// connection itself, in large reads.
func pump(dst io.Writer, read *bufio.Reader, src io.Reader) error {
	if n := read.Buffered(); n > 0 {
		b, _ := read.Peek(n)
		if _, err := dst.Write(b); err != nil {
			return err
		}
		_, _ = read.Discard(n)
	}
	_, err := io.CopyBuffer(dst, struct{ io.Reader }{src}, make([]byte, pumpBuffer))
	return err
}

// countedWriter tells add of every byte written.
type countedWriter struct {
	w   io.Writer
	add func(int64)
}

func (c countedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.add(int64(n))
	return n, err
}

// joinBackend reads the backend's greeting and sends it the client's flags.
func joinBackend(r io.Reader, w io.Writer, flags uint32) error {
	var hello struct {
		Magic, Opt uint64
		Flags      uint16
	}
	if err := binary.Read(r, binary.BigEndian, &hello); err != nil {
		return err
	}
	if hello.Magic != magicNBD || hello.Opt != magicIHaveOpt || hello.Flags&flagFixedNewstyle == 0 {
		return errors.New("not a fixed newstyle NBD server")
	}
	return binary.Write(w, binary.BigEndian, flags&uint32(flagFixedNewstyle|uint32(hello.Flags&flagNoZeroes)))
}

// negotiate relays the client's options to the backend, refusing the ones
// it must not see answered, until the transmission phase starts.
func (g *Gate) negotiate(client *bufio.Reader, cw io.Writer, server *bufio.Reader, sw io.Writer) error {
	for {
		o, err := readOption(client)
		if err != nil {
			return err
		}
		switch o.opt {
		case optList:
			if err := reply(cw, o.opt, repErrPolicy, "export names are not listed: the snapshot's answer names them"); err != nil {
				return err
			}
			continue
		case optStartTLS:
			if err := reply(cw, o.opt, repErrInvalid, "TLS is already on"); err != nil {
				return err
			}
			continue
		}
		if _, err := sw.Write(o.bytes()); err != nil {
			return err
		}
		if o.opt == optExportName {
			return nil // the server answers in the transmission phase's terms
		}
		final, err := relayReplies(server, cw, o.opt)
		if err != nil {
			return err
		}
		switch {
		case o.opt == optAbort:
			return io.EOF
		case o.opt == optGo && final == repAck:
			return nil
		}
	}
}

// relayReplies passes the backend's replies to one option on until the
// final one (an ACK or an error), which it returns.
func relayReplies(r io.Reader, w io.Writer, opt uint32) (uint32, error) {
	for {
		var h struct {
			Magic     uint64
			Opt, Type uint32
			Len       uint32
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return 0, err
		}
		if h.Magic != magicOptReply || h.Opt != opt || h.Len > maxOptionReplyBytes {
			return 0, fmt.Errorf("bad reply from the backend to option %d", opt)
		}
		data := make([]byte, h.Len)
		if _, err := io.ReadFull(r, data); err != nil {
			return 0, err
		}
		b := binary.BigEndian.AppendUint64(nil, h.Magic)
		b = binary.BigEndian.AppendUint32(b, h.Opt)
		b = binary.BigEndian.AppendUint32(b, h.Type)
		b = binary.BigEndian.AppendUint32(b, h.Len)
		if _, err := w.Write(append(b, data...)); err != nil {
			return 0, err
		}
		if h.Type == repAck || h.Type&repErrBit != 0 {
			return h.Type, nil
		}
	}
}

// refuseAll answers every option with why the client may reach nothing,
// until it gives up.
func refuseAll(r io.Reader, w io.Writer, why error) error {
	for {
		o, err := readOption(r)
		if err != nil {
			return why
		}
		if o.opt == optExportName {
			return why
		}
		if err := reply(w, o.opt, repErrPolicy, why.Error()); err != nil || o.opt == optAbort {
			return why
		}
	}
}
