package console

import (
	"bytes"
	"crypto/des"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// fakeQEMU is a VNC server that wants VNC authentication with password and
// then answers a ClientInit with a ServerInit naming "restored-test".
func fakeQEMU(t *testing.T, password string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "RFB 003.008\n")
				ver := make([]byte, 12)
				_, _ = io.ReadFull(c, ver)
				_, _ = c.Write([]byte{1, secVNCAuth})
				var choice [1]byte
				_, _ = io.ReadFull(c, choice[:])
				challenge := []byte("0123456789abcdef")
				_, _ = c.Write(challenge)
				resp := make([]byte, 16)
				_, _ = io.ReadFull(c, resp)
				want, _ := vncResponse(challenge, password)
				if !bytes.Equal(resp, want) {
					_ = binary.Write(c, binary.BigEndian, uint32(1))
					_ = binary.Write(c, binary.BigEndian, uint32(len("Authentication failed")))
					_, _ = io.WriteString(c, "Authentication failed")
					return
				}
				_ = binary.Write(c, binary.BigEndian, uint32(0))
				var shared [1]byte
				_, _ = io.ReadFull(c, shared[:])
				_, _ = io.WriteString(c, "SERVERINIT:restored-test")
			}()
		}
	}()
	return l.Addr().String()
}

func TestVNCResponseIsDESWithBitReversedKey(t *testing.T) {
	// The key bytes of "pw" reversed bit by bit: 'p'=0x70 → 0x0e, 'w'=0x77 → 0xee.
	block, _ := des.NewCipher([]byte{0x0e, 0xee, 0, 0, 0, 0, 0, 0})
	challenge := []byte("0123456789abcdef")
	want := make([]byte, 16)
	block.Encrypt(want[:8], challenge[:8])
	block.Encrypt(want[8:], challenge[8:])
	got, _ := vncResponse(challenge, "pw")
	if !bytes.Equal(got, want) {
		t.Fatalf("response %x, want %x", got, want)
	}
}

func TestTheBrowserGetsAnAuthenticatedSessionWithoutThePassword(t *testing.T) {
	addr := fakeQEMU(t, "s3cret-pw")
	vnc, err := DialVNC("tcp", addr, "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	browser, bridge := net.Pipe()
	go func() {
		if err := OfferNoAuth(bridge); err != nil {
			bridge.Close()
			return
		}
		Relay(bridge, vnc)
	}()
	// The browser's side of RFB 3.8 with security None.
	ver := make([]byte, 12)
	if _, err := io.ReadFull(browser, ver); err != nil || string(ver) != rfbVersion {
		t.Fatalf("version %q %v", ver, err)
	}
	_, _ = io.WriteString(browser, rfbVersion)
	types := make([]byte, 2)
	_, _ = io.ReadFull(browser, types)
	if !bytes.Equal(types, []byte{1, secNone}) {
		t.Fatalf("security types %v, want only None", types)
	}
	_, _ = browser.Write([]byte{secNone})
	var result uint32
	if err := binary.Read(browser, binary.BigEndian, &result); err != nil || result != 0 {
		t.Fatalf("security result %d %v", result, err)
	}
	_, _ = browser.Write([]byte{1}) // ClientInit: shared
	init := make([]byte, len("SERVERINIT:restored-test"))
	if _, err := io.ReadFull(browser, init); err != nil || string(init) != "SERVERINIT:restored-test" {
		t.Fatalf("relayed %q %v", init, err)
	}
	browser.Close()
}

func TestAWrongPasswordIsRefusedWithQEMUsReason(t *testing.T) {
	addr := fakeQEMU(t, "right")
	if _, err := DialVNC("tcp", addr, "wrong"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("Authentication failed")) {
		t.Fatalf("err %v", err)
	}
}
