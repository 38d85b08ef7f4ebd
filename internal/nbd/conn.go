package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Error is an error the server returned for a command.
type Error struct {
	Op     string
	Errno  uint32
	Offset int64
	Msg    string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("nbd: %s at offset %d: %v", e.Op, e.Offset, syscall.Errno(e.Errno))
	if e.Msg != "" {
		s += " (" + e.Msg + ")"
	}
	return s
}

// Extent is a run of bytes with the same metadata flags.
type Extent struct {
	Offset, Length int64
	Flags          uint32
}

// Size is the export's size in bytes.
func (c *Conn) Size() int64 { return c.size }

// ReadOnly says whether the server refuses writes.
func (c *Conn) ReadOnly() bool { return c.readOnly }

// Close ends the session (NBD_CMD_DISC) and closes the connection.
func (c *Conn) Close() error {
	_ = c.send(cmdDisc, 0, 0, 0, nil)
	return c.c.Close()
}

func (c *Conn) send(cmd uint16, flags uint16, off int64, length uint32, data []byte) error {
	c.cookie++
	h := binary.BigEndian.AppendUint32(make([]byte, 0, 28+len(data)), magicRequest)
	h = binary.BigEndian.AppendUint16(h, flags)
	h = binary.BigEndian.AppendUint16(h, cmd)
	h = binary.BigEndian.AppendUint64(h, c.cookie)
	h = binary.BigEndian.AppendUint64(h, uint64(off))
	h = binary.BigEndian.AppendUint32(h, length)
	if _, err := c.c.Write(append(h, data...)); err != nil {
		return fmt.Errorf("nbd: send request: %w", err)
	}
	return nil
}

// chunk is one reply chunk (a simple reply is one chunk with done set).
type chunk struct {
	typ  uint16
	done bool
	// simple: a simple reply's error (its data, for a read, follows unread).
	simple bool
	errno  uint32
	length uint32
}

func (c *Conn) readChunk(op string) (chunk, error) {
	var magic uint32
	if err := binary.Read(c.r, binary.BigEndian, &magic); err != nil {
		return chunk{}, fmt.Errorf("nbd: %s: read reply: %w", op, err)
	}
	switch magic {
	case magicSimple:
		var h struct {
			Errno  uint32
			Cookie uint64
		}
		if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
			return chunk{}, fmt.Errorf("nbd: %s: read reply: %w", op, err)
		}
		if h.Cookie != c.cookie {
			return chunk{}, fmt.Errorf("nbd: %s: reply for request %d, want %d", op, h.Cookie, c.cookie)
		}
		return chunk{done: true, simple: true, errno: h.Errno}, nil
	case magicStructured:
		var h struct {
			Flags, Type uint16
			Cookie      uint64
			Length      uint32
		}
		if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
			return chunk{}, fmt.Errorf("nbd: %s: read reply: %w", op, err)
		}
		if h.Cookie != c.cookie {
			return chunk{}, fmt.Errorf("nbd: %s: reply for request %d, want %d", op, h.Cookie, c.cookie)
		}
		return chunk{typ: h.Type, done: h.Flags&replyFlagDone != 0, length: h.Length}, nil
	}
	return chunk{}, fmt.Errorf("nbd: %s: bad reply magic %#x", op, magic)
}

// chunkError reads an error chunk's payload.
func (c *Conn) chunkError(op string, off int64, ch chunk) error {
	if ch.length < 6 || ch.length > maxOptionReplyBytes {
		return fmt.Errorf("nbd: %s: bad error chunk of %d bytes", op, ch.length)
	}
	p := make([]byte, ch.length)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return fmt.Errorf("nbd: %s: %w", op, err)
	}
	n := int(binary.BigEndian.Uint16(p[4:]))
	msg := ""
	if 6+n <= len(p) {
		msg = string(p[6 : 6+n])
	}
	return &Error{Op: op, Errno: binary.BigEndian.Uint32(p), Offset: off, Msg: msg}
}

// skip discards a chunk payload the client does not use.
func (c *Conn) skip(n uint32) error {
	_, err := c.r.Discard(int(n))
	return err
}

// ReadAt reads len(p) bytes at off. Holes read as zeroes and are not
// counted in BytesRead. Requests larger than 32 MiB are split.
func (c *Conn) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, maxRequest)
		if err := c.read(p[done:done+n], off+int64(done)); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func (c *Conn) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > c.size {
		return fmt.Errorf("nbd: read of %d bytes at %d is outside the %d-byte export", len(p), off, c.size)
	}
	if err := c.send(cmdRead, 0, off, uint32(len(p)), nil); err != nil {
		return err
	}
	var firstErr error
	for {
		ch, err := c.readChunk("read")
		if err != nil {
			return err
		}
		if ch.simple {
			if ch.errno != 0 {
				return &Error{Op: "read", Errno: ch.errno, Offset: off}
			}
			if _, err := io.ReadFull(c.r, p); err != nil {
				return fmt.Errorf("nbd: read: %w", err)
			}
			c.BytesRead += int64(len(p))
			return nil
		}
		switch {
		case ch.typ == replyOffsetData:
			if err := c.readData(p, off, ch.length); err != nil {
				return err
			}
		case ch.typ == replyOffsetHole:
			if err := c.readHole(p, off, ch.length); err != nil {
				return err
			}
		case ch.typ&replyErrBit != 0:
			if err := c.chunkError("read", off, ch); firstErr == nil {
				firstErr = err
			}
		default:
			if err := c.skip(ch.length); err != nil {
				return err
			}
		}
		if ch.done {
			return firstErr
		}
	}
}

func (c *Conn) readData(p []byte, off int64, length uint32) error {
	var at uint64
	if length < 8 {
		return errors.New("nbd: read: short data chunk")
	}
	if err := binary.Read(c.r, binary.BigEndian, &at); err != nil {
		return fmt.Errorf("nbd: read: %w", err)
	}
	n := int64(length) - 8
	rel := int64(at) - off
	if rel < 0 || rel+n > int64(len(p)) {
		return fmt.Errorf("nbd: read: server sent data at %d+%d outside the request %d+%d", at, n, off, len(p))
	}
	if _, err := io.ReadFull(c.r, p[rel:rel+n]); err != nil {
		return fmt.Errorf("nbd: read: %w", err)
	}
	c.BytesRead += n
	return nil
}

func (c *Conn) readHole(p []byte, off int64, length uint32) error {
	var h struct {
		At  uint64
		Len uint32
	}
	if length != 12 {
		return errors.New("nbd: read: bad hole chunk")
	}
	if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
		return fmt.Errorf("nbd: read: %w", err)
	}
	rel := int64(h.At) - off
	if rel < 0 || rel+int64(h.Len) > int64(len(p)) {
		return fmt.Errorf("nbd: read: server sent a hole at %d+%d outside the request", h.At, h.Len)
	}
	clear(p[rel : rel+int64(h.Len)])
	return nil
}

// WriteAt writes p at off. Requests larger than 32 MiB are split.
func (c *Conn) WriteAt(p []byte, off int64) (int, error) {
	if c.readOnly {
		return 0, errors.New("nbd: the export is read-only")
	}
	done := 0
	for done < len(p) {
		n := min(len(p)-done, maxRequest)
		if err := c.simpleCommand("write", cmdWrite, off+int64(done), uint32(n), p[done:done+n]); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// Flush asks the server to make every write durable.
func (c *Conn) Flush() error { return c.simpleCommand("flush", cmdFlush, 0, 0, nil) }

// simpleCommand sends a command whose only reply is success or an error.
func (c *Conn) simpleCommand(op string, cmd uint16, off int64, length uint32, data []byte) error {
	if err := c.send(cmd, 0, off, length, data); err != nil {
		return err
	}
	var firstErr error
	for {
		ch, err := c.readChunk(op)
		if err != nil {
			return err
		}
		if ch.simple {
			if ch.errno != 0 {
				return &Error{Op: op, Errno: ch.errno, Offset: off}
			}
			return nil
		}
		if ch.typ&replyErrBit != 0 {
			if err := c.chunkError(op, off, ch); firstErr == nil {
				firstErr = err
			}
		} else if err := c.skip(ch.length); err != nil {
			return err
		}
		if ch.done {
			return firstErr
		}
	}
}

// BlockStatus returns the extents of metadata context ctx covering
// [off, off+length), merged where neighbours share their flags. It asks
// again where the server answered for less than the range.
func (c *Conn) BlockStatus(ctx string, off, length int64) ([]Extent, error) {
	id, ok := c.contexts[ctx]
	if !ok {
		return nil, fmt.Errorf("nbd: metadata context %q was not negotiated", ctx)
	}
	if off < 0 || length < 0 || off+length > c.size {
		return nil, fmt.Errorf("nbd: block status of %d bytes at %d is outside the %d-byte export", length, off, c.size)
	}
	var out []Extent
	end := off + length
	for off < end {
		ask := min(end-off, 1<<30)
		got, err := c.blockStatus(id, off, uint32(ask))
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("nbd: block status at %d: the server described nothing", off)
		}
		for _, e := range got {
			if e.Length <= 0 {
				return nil, fmt.Errorf("nbd: block status at %d: the server sent an empty extent", off)
			}
			e.Offset = off
			e.Length = min(e.Length, end-off)
			if n := len(out); n > 0 && out[n-1].Flags == e.Flags && out[n-1].Offset+out[n-1].Length == e.Offset {
				out[n-1].Length += e.Length
			} else {
				out = append(out, e)
			}
			off += e.Length
			if off >= end {
				break
			}
		}
	}
	return out, nil
}

func (c *Conn) blockStatus(id uint32, off int64, length uint32) ([]Extent, error) {
	if err := c.send(cmdBlockStatus, 0, off, length, nil); err != nil {
		return nil, err
	}
	var ext []Extent
	var firstErr error
	for {
		ch, err := c.readChunk("block status")
		if err != nil {
			return nil, err
		}
		if ch.simple {
			if ch.errno != 0 {
				return nil, &Error{Op: "block status", Errno: ch.errno, Offset: off}
			}
			return nil, errors.New("nbd: block status: the server sent a simple reply")
		}
		switch {
		case ch.typ == replyBlockStatus:
			if ch.length < 4 || (ch.length-4)%8 != 0 || ch.length > maxOptionReplyBytes {
				return nil, fmt.Errorf("nbd: block status: bad chunk of %d bytes", ch.length)
			}
			p := make([]byte, ch.length)
			if _, err := io.ReadFull(c.r, p); err != nil {
				return nil, fmt.Errorf("nbd: block status: %w", err)
			}
			if binary.BigEndian.Uint32(p) != id {
				break
			}
			for i := 4; i < len(p); i += 8 {
				ext = append(ext, Extent{Length: int64(binary.BigEndian.Uint32(p[i:])), Flags: binary.BigEndian.Uint32(p[i+4:])})
			}
		case ch.typ&replyErrBit != 0:
			if err := c.chunkError("block status", off, ch); firstErr == nil {
				firstErr = err
			}
		default:
			if err := c.skip(ch.length); err != nil {
				return nil, err
			}
		}
		if ch.done {
			return ext, firstErr
		}
	}
}
