// Package console bridges a browser's VNC client (noVNC) to a restore's
// QEMU VNC server: it authenticates to QEMU with the domain's VNC password
// (RFB "VNC authentication") and offers the browser an already
// authenticated session (security type None), so the password never leaves
// the host. After the handshakes the bytes are relayed as they are.
package console

import (
	"bytes"
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	rfbVersion     = "RFB 003.008\n"
	secNone        = 1
	secVNCAuth     = 2
	handshakeLimit = 10 * time.Second
)

// DialVNC connects to a VNC server at addr (network "unix" or "tcp") and authenticates with password
// (RFB 3.8, VNC authentication). The returned connection is positioned
// right after the SecurityResult: the next message is the ClientInit.
func DialVNC(network, addr, password string) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, handshakeLimit)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeLimit))
	if err := authenticate(c, password); err != nil {
		c.Close()
		return nil, fmt.Errorf("VNC handshake with %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func authenticate(c io.ReadWriter, password string) error {
	ver := make([]byte, 12)
	if _, err := io.ReadFull(c, ver); err != nil {
		return err
	}
	if !bytes.HasPrefix(ver, []byte("RFB 003.")) {
		return fmt.Errorf("not an RFB server (%q)", ver)
	}
	if _, err := io.WriteString(c, rfbVersion); err != nil {
		return err
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return err
	}
	if n[0] == 0 {
		return errors.New("the server refused the connection: " + readReason(c))
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c, types); err != nil {
		return err
	}
	if !bytes.Contains(types, []byte{secVNCAuth}) {
		return fmt.Errorf("the server offers security types %v, not VNC authentication", types)
	}
	if _, err := c.Write([]byte{secVNCAuth}); err != nil {
		return err
	}
	challenge := make([]byte, 16)
	if _, err := io.ReadFull(c, challenge); err != nil {
		return err
	}
	resp, err := vncResponse(challenge, password)
	if err != nil {
		return err
	}
	if _, err := c.Write(resp); err != nil {
		return err
	}
	var result uint32
	if err := binary.Read(c, binary.BigEndian, &result); err != nil {
		return err
	}
	if result != 0 {
		return errors.New("the VNC password was refused: " + readReason(c))
	}
	return nil
}

// vncResponse encrypts the challenge with DES keyed by the password (at most
// 8 bytes, each byte's bits reversed, as VNC does).
func vncResponse(challenge []byte, password string) ([]byte, error) {
	key := make([]byte, 8)
	copy(key, password)
	for i, b := range key {
		var r byte
		for j := 0; j < 8; j++ {
			if b&(1<<j) != 0 {
				r |= 1 << (7 - j)
			}
		}
		key[i] = r
	}
	block, err := des.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	block.Encrypt(out[:8], challenge[:8])
	block.Encrypt(out[8:], challenge[8:])
	return out, nil
}

func readReason(r io.Reader) string {
	var n uint32
	if binary.Read(r, binary.BigEndian, &n) != nil || n > 1024 {
		return "no reason given"
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "no reason given"
	}
	return string(b)
}

// OfferNoAuth plays an RFB 3.8 server's handshake with security type None
// to the client on rw, up to and including the SecurityResult.
func OfferNoAuth(rw io.ReadWriter) error {
	if _, err := io.WriteString(rw, rfbVersion); err != nil {
		return err
	}
	ver := make([]byte, 12)
	if _, err := io.ReadFull(rw, ver); err != nil {
		return err
	}
	if !bytes.HasPrefix(ver, []byte("RFB 003.")) {
		return fmt.Errorf("not an RFB client (%q)", ver)
	}
	if _, err := rw.Write([]byte{1, secNone}); err != nil {
		return err
	}
	var choice [1]byte
	if _, err := io.ReadFull(rw, choice[:]); err != nil {
		return err
	}
	if choice[0] != secNone {
		return fmt.Errorf("the client chose security type %d, only None (1) is offered", choice[0])
	}
	return binary.Write(rw, binary.BigEndian, uint32(0))
}

// Relay copies both ways until either side ends, then closes both.
func Relay(a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
	<-done
}
