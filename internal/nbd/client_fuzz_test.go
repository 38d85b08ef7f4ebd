package nbd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// serverBytes is a net.Conn whose peer (the NBD server) says exactly the
// fuzzer's bytes and hears nothing.
type serverBytes struct{ r *bytes.Reader }

func (s serverBytes) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s serverBytes) Write(p []byte) (int, error)      { return len(p), nil }
func (s serverBytes) Close() error                     { return nil }
func (s serverBytes) LocalAddr() net.Addr              { return &net.UnixAddr{} }
func (s serverBytes) RemoteAddr() net.Addr             { return &net.UnixAddr{} }
func (s serverBytes) SetDeadline(time.Time) error      { return nil }
func (s serverBytes) SetReadDeadline(time.Time) error  { return nil }
func (s serverBytes) SetWriteDeadline(time.Time) error { return nil }

// A well-behaved server's answers: greeting, structured replies, one meta
// context, NBD_OPT_GO with a 1 MiB export; then one read's reply.
func goodServer() []byte {
	be := binary.BigEndian
	b := be.AppendUint64(nil, magicNBD)
	b = be.AppendUint64(b, magicIHaveOpt)
	b = be.AppendUint16(b, flagFixedNewstyle|flagNoZeroes)
	reply := func(opt, typ uint32, data []byte) {
		b = be.AppendUint64(b, magicOptReply)
		b = be.AppendUint32(b, opt)
		b = be.AppendUint32(b, typ)
		b = be.AppendUint32(b, uint32(len(data)))
		b = append(b, data...)
	}
	reply(optStructuredReply, repAck, nil)
	ctx := be.AppendUint32(nil, 7)
	reply(optSetMetaContext, repMetaContext, append(ctx, "base:allocation"...))
	reply(optSetMetaContext, repAck, nil)
	info := be.AppendUint16(nil, infoExport)
	info = be.AppendUint64(info, 1<<20)
	info = be.AppendUint16(info, 0)
	reply(optGo, repInfo, info)
	reply(optGo, repAck, nil)
	// The read: a simple reply with 512 bytes of data.
	b = be.AppendUint32(b, magicSimple)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint64(b, 1)
	return append(b, make([]byte, 512)...)
}

// Whatever a server sends, the client neither panics nor reads past what
// it was asked, nor allocates what a hostile length says.
func FuzzClientReplies(f *testing.F) {
	f.Add(goodServer())
	good := goodServer()
	f.Add(good[:len(good)-600])
	f.Add([]byte("NBDMAGICIHAVEOPT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb := serverBytes{r: bytes.NewReader(data)}
		c := &Conn{c: sb, r: bufio.NewReader(sb), contexts: map[string]uint32{}}
		if err := c.handshake(Options{Export: "x", MetaContexts: []string{"base:allocation"}}); err != nil {
			return
		}
		if c.size < 0 {
			t.Fatalf("negative export size %d accepted", c.size)
		}
		p := make([]byte, 512)
		if n, err := c.ReadAt(p, 0); err == nil && n != len(p) {
			t.Fatalf("read %d bytes, asked %d, no error", n, len(p))
		}
		if c.size > 0 {
			ext, err := c.BlockStatus("base:allocation", 0, min(c.size, 1<<20))
			if err == nil {
				var sum int64
				for _, e := range ext {
					if e.Length <= 0 {
						t.Fatalf("empty extent %v", e)
					}
					sum += e.Length
				}
				if sum != min(c.size, 1<<20) {
					t.Fatalf("extents cover %d bytes of %d", sum, min(c.size, 1<<20))
				}
			}
		}
		_, _ = io.Copy(io.Discard, sb.r)
	})
}

// The fuzzer's main seed is a server the client works with, so mutations
// start from a session that reaches reads and block status.
func TestTheFuzzSeedIsAWorkingServer(t *testing.T) {
	sb := serverBytes{r: bytes.NewReader(goodServer())}
	c := &Conn{c: sb, r: bufio.NewReader(sb), contexts: map[string]uint32{}}
	if err := c.handshake(Options{Export: "x", MetaContexts: []string{"base:allocation"}}); err != nil {
		t.Fatal(err)
	}
	if c.size != 1<<20 || c.contexts["base:allocation"] != 7 {
		t.Fatalf("size %d, contexts %v", c.size, c.contexts)
	}
	if n, err := c.ReadAt(make([]byte, 512), 0); err != nil || n != 512 {
		t.Fatalf("read: %d %v", n, err)
	}
}
