package console

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// peer is one side of an RFB handshake: it reads the fuzzer's bytes and
// hears nothing.
type peer struct{ io.Reader }

func (peer) Write(p []byte) (int, error) { return len(p), nil }

// A VNC server that accepts the password: the client's happy path.
func goodVNCServer() []byte {
	b := []byte("RFB 003.008\n")
	b = append(b, 1, secVNCAuth)
	b = append(b, make([]byte, 16)...) // challenge
	return binary.BigEndian.AppendUint32(b, 0)
}

// Whatever the VNC server (QEMU, or something posing as it) sends, the
// agent's RFB client neither panics nor accepts a session that did not say
// "RFB 003." and result 0.
func FuzzRFBClientHandshake(f *testing.F) {
	f.Add(goodVNCServer())
	f.Add([]byte("RFB 003.008\n\x00\x00\x00\x00\x05fails"))
	f.Add([]byte("RFB 003.008\n\x01\x02" + string(make([]byte, 16)) + "\x00\x00\x00\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := authenticate(peer{bytes.NewReader(data)}, "secret"); err == nil {
			if !bytes.HasPrefix(data, []byte("RFB 003.")) || len(data) < 12+2+16+4 {
				t.Fatalf("accepted a handshake of %d bytes: %q", len(data), data)
			}
		}
	})
}

// Whatever a browser (through the console websocket) sends, the agent's
// RFB server side neither panics nor hangs on a short read.
func FuzzRFBServerHandshake(f *testing.F) {
	f.Add([]byte("RFB 003.008\n\x01"))
	f.Add([]byte("RFB 003.003\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = OfferNoAuth(peer{bytes.NewReader(data)})
	})
}

func TestTheVNCFuzzSeedIsAServerTheClientAccepts(t *testing.T) {
	if err := authenticate(peer{bytes.NewReader(goodVNCServer())}, "secret"); err != nil {
		t.Fatal(err)
	}
}
