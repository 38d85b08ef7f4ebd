package kvm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
)

// fakeLibvirtd answers the calls a screenshot makes. order lists what it
// sends for the screenshot call: "reply", "data" (the picture) and "eof",
// in that order; "error" answers the lookup with an error; "silent" never
// answers the screenshot.
type fakeLibvirtd struct {
	order   []string
	picture []byte
	finish  chan struct{} // closed when the client finished the stream
}

type wireHeader struct {
	Len, Program, Version, Proc, Type uint32
	Serial                            int32
	Status                            uint32
}

func (f *fakeLibvirtd) serve(t *testing.T, conn net.Conn) {
	defer conn.Close()
	send := func(h wireHeader, payload []byte) {
		h.Len = uint32(28 + len(payload))
		h.Program, h.Version = remoteProgram, 1
		_ = binary.Write(conn, binary.BigEndian, h)
		_, _ = conn.Write(payload)
	}
	for {
		var h wireHeader
		if err := binary.Read(conn, binary.BigEndian, &h); err != nil {
			return
		}
		payload := make([]byte, h.Len-28)
		if _, err := io.ReadFull(conn, payload); err != nil {
			return
		}
		reply := wireHeader{Proc: h.Proc, Serial: h.Serial, Type: socket.Reply, Status: socket.StatusOK}
		switch {
		case h.Type == socket.Stream: // the client's finish
			close(f.finish)
			send(wireHeader{Proc: h.Proc, Serial: h.Serial, Type: socket.Stream, Status: socket.StatusOK}, nil)
		case h.Proc == procAuthList:
			send(reply, []byte{0, 0, 0, 1, 0, 0, 0, 0}) // [none]
		case h.Proc == procDomainLookupName:
			if f.order[0] == "error" {
				var e bytes.Buffer
				putUint32(&e, 42) // VIR_ERR_NO_DOMAIN
				putUint32(&e, 10)
				putUint32(&e, 1)
				putString(&e, "Domain not found: no domain with matching name 'x'")
				reply.Status = socket.StatusError
				send(reply, e.Bytes())
				continue
			}
			var d bytes.Buffer
			putString(&d, "restored-x")
			d.Write(make([]byte, 16))
			putUint32(&d, 7)
			send(reply, d.Bytes())
		case h.Proc == procDomainScreenshot:
			for _, step := range f.order {
				switch step {
				case "reply":
					var m bytes.Buffer
					putUint32(&m, 1)
					putString(&m, "image/png")
					send(reply, m.Bytes())
				case "data":
					half := len(f.picture) / 2
					for _, part := range [][]byte{f.picture[:half], f.picture[half:]} {
						send(wireHeader{Proc: h.Proc, Serial: h.Serial, Type: socket.Stream, Status: socket.StatusContinue}, part)
					}
				case "eof":
					send(wireHeader{Proc: h.Proc, Serial: h.Serial, Type: socket.Stream, Status: socket.StatusContinue}, nil)
				}
			}
		default: // connect open, close
			send(reply, nil)
		}
	}
}

func TestScreenshotStreamSurvivesEveryPacketOrder(t *testing.T) {
	picture := bytes.Repeat([]byte("PNGDATA!"), 1000)
	for _, tc := range []struct {
		name  string
		order []string
	}{
		{"reply first, as documented", []string{"reply", "data", "eof"}},
		{"data before the reply (the go-libvirt race)", []string{"data", "reply", "eof"}},
		{"whole stream before the reply", []string{"data", "eof", "reply"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLibvirtd{order: tc.order, picture: picture, finish: make(chan struct{})}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := openScreenConn(ctx, func() (net.Conn, error) {
				client, server := net.Pipe()
				go f.serve(t, server)
				return client, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.close(ctx)
			got, err := c.screenshot(ctx, "restored-x")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, picture) {
				t.Fatalf("got %d bytes, want the %d-byte picture", len(got), len(picture))
			}
			select {
			case <-f.finish:
			default:
				t.Fatal("the stream was not finished")
			}
		})
	}
}

func TestScreenshotStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []string
		check func(error) bool
	}{
		{"libvirt's error is returned with its message", []string{"error"}, func(err error) bool {
			var e *rpcError
			return errors.As(err, &e) && e.Code == 42 && bytes.Contains([]byte(e.Message), []byte("Domain not found"))
		}},
		{"a silent libvirtd times out instead of hanging", []string{"silent"}, func(err error) bool {
			return errors.Is(err, ErrTimeout)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLibvirtd{order: tc.order, finish: make(chan struct{})}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := openScreenConn(ctx, func() (net.Conn, error) {
				client, server := net.Pipe()
				go f.serve(t, server)
				return client, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.abort()
			sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer scancel()
			_, err = c.screenshot(sctx, "restored-x")
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
