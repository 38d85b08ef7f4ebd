package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Server serves read-only exports from io.ReaderAt sources: the NBD end of
// a snapshot whose disks are not files on this host (a VMware snapshot's
// disks, read from the datastore). It speaks the subset backup jobs use:
// fixed newstyle, NBD_OPT_GO and NBD_OPT_INFO, simple replies,
// NBD_CMD_READ and NBD_CMD_DISC; writes are refused with EPERM. It sits
// behind the Gate on a unix socket (the Gate does TLS), like QEMU's.
type Server struct {
	// Exports are the export names and what they read.
	Exports map[string]Export
	Log     *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Export is one read-only export.
type Export struct {
	Size int64
	// ReadAt reads the export; it is given the request's context, which
	// ends when the client goes away.
	ReadAt func(ctx context.Context, p []byte, off int64) error
}

// Serve accepts clients on l until it is closed.
func (s *Server) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		if !s.track(c, true) {
			c.Close()
			continue
		}
		go func() {
			defer s.track(c, false)
			defer c.Close()
			if err := s.handle(c); err != nil && !errors.Is(err, io.EOF) && s.Log != nil {
				s.Log.Debug("nbd client ended", "err", err)
			}
		}()
	}
}

// Close ends every client (the listener is the caller's to close).
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// Info reply fields.
const (
	optInfo        = 6
	transmitHasFlg = 1 << 0
	errPerm        = uint32(syscall.EPERM)
	errInval       = uint32(syscall.EINVAL)
	errIO          = uint32(syscall.EIO)
)

func (s *Server) handle(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(handshakeLimit))
	if _, err := greet(c); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	var ex Export
	for done := false; !done; {
		o, err := readOption(r)
		if err != nil {
			return err
		}
		switch o.opt {
		case optAbort:
			_ = reply(c, o.opt, repAck, "")
			return io.EOF
		case optExportName: // old-style: no error reply is possible
			e, ok := s.Exports[string(o.data)]
			if !ok {
				return fmt.Errorf("unknown export")
			}
			b := binary.BigEndian.AppendUint64(nil, uint64(e.Size))
			b = binary.BigEndian.AppendUint16(b, transmitHasFlg|transmitReadOnly)
			if _, err := c.Write(b); err != nil {
				return err
			}
			ex, done = e, true
		case optGo, optInfo:
			if len(o.data) < 6 {
				if err := reply(c, o.opt, repErrInvalid, "short option"); err != nil {
					return err
				}
				continue
			}
			n := binary.BigEndian.Uint32(o.data)
			if int(n)+6 > len(o.data) {
				if err := reply(c, o.opt, repErrInvalid, "bad export name length"); err != nil {
					return err
				}
				continue
			}
			e, ok := s.Exports[string(o.data[4:4+n])]
			if !ok {
				if err := reply(c, o.opt, repErrUnknown, "no such export"); err != nil {
					return err
				}
				continue
			}
			info := binary.BigEndian.AppendUint16(nil, infoExport)
			info = binary.BigEndian.AppendUint64(info, uint64(e.Size))
			info = binary.BigEndian.AppendUint16(info, transmitHasFlg|transmitReadOnly)
			if err := replyData(c, o.opt, repInfo, info); err != nil {
				return err
			}
			if err := reply(c, o.opt, repAck, ""); err != nil {
				return err
			}
			if o.opt == optGo {
				ex, done = e, true
			}
		default: // structured replies, metadata contexts, listing: not offered
			if err := reply(c, o.opt, repErrUnsup, "not supported by this server"); err != nil {
				return err
			}
		}
	}
	_ = c.SetDeadline(time.Time{})
	return s.transmit(r, c, ex)
}

func replyData(w io.Writer, opt, typ uint32, data []byte) error {
	b := binary.BigEndian.AppendUint64(nil, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	_, err := w.Write(append(b, data...))
	return err
}

// transmit answers requests one at a time until the client disconnects.
func (s *Server) transmit(r *bufio.Reader, w net.Conn, ex Export) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf := make([]byte, 0, 4<<20)
	for {
		var req struct {
			Magic       uint32
			Flags, Type uint16
			Cookie      uint64
			Offset      uint64
			Length      uint32
		}
		if err := binary.Read(r, binary.BigEndian, &req); err != nil {
			return err
		}
		if req.Magic != magicRequest {
			return fmt.Errorf("bad request magic %#x", req.Magic)
		}
		simple := func(errno uint32, data []byte) error {
			h := binary.BigEndian.AppendUint32(make([]byte, 0, 16), magicSimple)
			h = binary.BigEndian.AppendUint32(h, errno)
			h = binary.BigEndian.AppendUint64(h, req.Cookie)
			if _, err := w.Write(h); err != nil {
				return err
			}
			if errno == 0 && len(data) > 0 {
				_, err := w.Write(data)
				return err
			}
			return nil
		}
		switch req.Type {
		case cmdDisc:
			return io.EOF
		case cmdRead:
			off, n := int64(req.Offset), int64(req.Length)
			if n > maxRequest || off < 0 || off+n > ex.Size {
				if err := simple(errInval, nil); err != nil {
					return err
				}
				continue
			}
			buf = buf[:0]
			if int64(cap(buf)) < n {
				buf = make([]byte, 0, n)
			}
			p := buf[:n]
			if err := ex.ReadAt(ctx, p, off); err != nil {
				if s.Log != nil {
					s.Log.Warn("nbd read failed", "offset", off, "length", n, "err", err)
				}
				if err := simple(errIO, nil); err != nil {
					return err
				}
				continue
			}
			if err := simple(0, p); err != nil {
				return err
			}
		case cmdWrite:
			// The payload follows; read it away, then refuse.
			if _, err := io.CopyN(io.Discard, r, int64(req.Length)); err != nil {
				return err
			}
			if err := simple(errPerm, nil); err != nil {
				return err
			}
		case cmdFlush:
			if err := simple(0, nil); err != nil {
				return err
			}
		default:
			if err := simple(errInval, nil); err != nil {
				return err
			}
		}
	}
}
