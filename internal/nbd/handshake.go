package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrUnknownExport is returned by Dial when the server has no export by
// that name (for a snapshot: a wrong or released export).
var ErrUnknownExport = errors.New("nbd: the server has no export by that name")

// Options say what to negotiate.
type Options struct {
	// Export is the export name.
	Export string
	// MetaContexts are the metadata contexts to ask for, e.g.
	// BaseAllocation or DirtyBitmapPrefix+"backup-vda". Each one the server
	// does not offer makes Dial fail.
	MetaContexts []string
	// TLS, when set, upgrades the connection with NBD_OPT_STARTTLS before
	// anything else is negotiated (a server that refuses fails Dial).
	TLS *tls.Config
}

// Conn is one negotiated NBD connection. It is not safe for concurrent use.
type Conn struct {
	c        net.Conn
	r        *bufio.Reader
	size     int64
	readOnly bool
	contexts map[string]uint32
	cookie   uint64
	// host is the dialled host, the name a TLS server must prove.
	host string
	// BytesRead counts the data bytes read (holes and zeroes excluded).
	BytesRead int64
}

// Dial connects to network/address ("tcp", "127.0.0.1:10809" or "unix",
// "/path") and negotiates opts.
func Dial(ctx context.Context, network, address string, opts Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("nbd: connect to %s: %w", address, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(address)
	c, err := client(nc, host, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// Client negotiates opts on a connection made elsewhere (a socket a
// confined process was handed); the caller closes nc when it fails.
func Client(nc net.Conn, opts Options) (*Conn, error) { return client(nc, "", opts) }

func client(nc net.Conn, host string, opts Options) (*Conn, error) {
	c := &Conn{c: nc, r: bufio.NewReaderSize(nc, 1<<20), contexts: map[string]uint32{}, host: host}
	if err := c.handshake(opts); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) handshake(opts Options) error {
	var hello struct {
		Magic, Opt uint64
		Flags      uint16
	}
	if err := binary.Read(c.r, binary.BigEndian, &hello); err != nil {
		return fmt.Errorf("nbd: read greeting: %w", err)
	}
	if hello.Magic != magicNBD || hello.Opt != magicIHaveOpt {
		return fmt.Errorf("nbd: not a newstyle NBD server (magic %#x %#x)", hello.Magic, hello.Opt)
	}
	if hello.Flags&flagFixedNewstyle == 0 {
		return errors.New("nbd: server does not speak fixed newstyle")
	}
	clientFlags := uint32(flagFixedNewstyle)
	if hello.Flags&flagNoZeroes != 0 {
		clientFlags |= flagNoZeroes
	}
	if err := binary.Write(c.c, binary.BigEndian, clientFlags); err != nil {
		return fmt.Errorf("nbd: send flags: %w", err)
	}
	if opts.TLS != nil {
		if err := c.option(optStartTLS, nil, func(uint32, []byte) error { return nil }); err != nil {
			return fmt.Errorf("nbd: the server refused TLS: %w", err)
		}
		cfg := opts.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			// The server's certificate must name the address dialled.
			cfg = cfg.Clone()
			cfg.ServerName = c.host
		}
		tc := tls.Client(c.c, cfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("nbd: TLS handshake: %w", err)
		}
		c.c, c.r = tc, bufio.NewReaderSize(tc, 1<<20)
	}
	structured := false
	if err := c.option(optStructuredReply, nil, func(typ uint32, data []byte) error { return nil }); err == nil {
		structured = true
	} else if !isRepErr(err) {
		return err
	}
	if len(opts.MetaContexts) > 0 {
		if !structured {
			return errors.New("nbd: server refused structured replies, so it cannot report block status")
		}
		if err := c.setMetaContexts(opts); err != nil {
			return err
		}
	}
	return c.optGo(opts.Export)
}

func (c *Conn) setMetaContexts(opts Options) error {
	payload := appendString32(nil, opts.Export)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(opts.MetaContexts)))
	for _, q := range opts.MetaContexts {
		payload = appendString32(payload, q)
	}
	err := c.option(optSetMetaContext, payload, func(typ uint32, data []byte) error {
		if typ != repMetaContext || len(data) < 4 {
			return nil
		}
		c.contexts[string(data[4:])] = binary.BigEndian.Uint32(data)
		return nil
	})
	if err != nil {
		return fmt.Errorf("nbd: set metadata contexts: %w", err)
	}
	for _, q := range opts.MetaContexts {
		if _, ok := c.contexts[q]; !ok {
			return fmt.Errorf("nbd: export %q has no metadata context %q (no such dirty bitmap?)", opts.Export, q)
		}
	}
	return nil
}

// maxExportSize is more than any disk Restored reads (qemu's own limit is
// 2^63 - 512; recovery points stop at 64 TiB).
const maxExportSize = 1 << 62

func (c *Conn) optGo(export string) error {
	payload := appendString32(nil, export)
	payload = binary.BigEndian.AppendUint16(payload, 0) // no extra info requests
	gotExport := false
	err := c.option(optGo, payload, func(typ uint32, data []byte) error {
		if typ != repInfo || len(data) < 2 || binary.BigEndian.Uint16(data) != infoExport {
			return nil
		}
		if len(data) < 12 {
			return errors.New("nbd: short NBD_INFO_EXPORT")
		}
		size := binary.BigEndian.Uint64(data[2:])
		if size > maxExportSize {
			// A size no image has (found by FuzzClientReplies: it read as
			// negative, and every offset check after it would be wrong).
			return fmt.Errorf("nbd: the server says the export has %d bytes", size)
		}
		c.size = int64(size)
		c.readOnly = binary.BigEndian.Uint16(data[10:])&transmitReadOnly != 0
		gotExport = true
		return nil
	})
	var re *repError
	if errors.As(err, &re) && re.typ == repErrUnknown {
		return fmt.Errorf("%w: %q", ErrUnknownExport, export)
	}
	if err != nil {
		return fmt.Errorf("nbd: open export %q: %w", export, err)
	}
	if !gotExport {
		return errors.New("nbd: server did not report the export's size")
	}
	return nil
}

// repError is an option the server refused.
type repError struct {
	opt, typ uint32
	msg      string
}

func (e *repError) Error() string {
	return fmt.Sprintf("server refused option %d (error %#x) %s", e.opt, e.typ, e.msg)
}

func isRepErr(err error) bool {
	var re *repError
	return errors.As(err, &re)
}

// option sends one option and reads replies until ACK, passing each
// other reply to each.
func (c *Conn) option(opt uint32, payload []byte, each func(typ uint32, data []byte) error) error {
	msg := binary.BigEndian.AppendUint64(nil, magicIHaveOpt)
	msg = binary.BigEndian.AppendUint32(msg, opt)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(payload)))
	if _, err := c.c.Write(append(msg, payload...)); err != nil {
		return fmt.Errorf("nbd: send option %d: %w", opt, err)
	}
	for {
		var h struct {
			Magic     uint64
			Opt, Type uint32
			Len       uint32
		}
		if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
			return fmt.Errorf("nbd: read option reply: %w", err)
		}
		if h.Magic != magicOptReply || h.Opt != opt {
			return fmt.Errorf("nbd: bad option reply (magic %#x, option %d)", h.Magic, h.Opt)
		}
		if h.Len > maxOptionReplyBytes {
			return fmt.Errorf("nbd: option reply of %d bytes", h.Len)
		}
		data := make([]byte, h.Len)
		if _, err := io.ReadFull(c.r, data); err != nil {
			return fmt.Errorf("nbd: read option reply: %w", err)
		}
		switch {
		case h.Type == repAck:
			return nil
		case h.Type&repErrBit != 0:
			return &repError{opt: opt, typ: h.Type, msg: string(data)}
		}
		if err := each(h.Type, data); err != nil {
			return err
		}
	}
}

func appendString32(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
