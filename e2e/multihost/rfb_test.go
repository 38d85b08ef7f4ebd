package multihost

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// screenOf plays an RFB 3.8 client on a console connection (which the
// agent has already authenticated to the VM: it offers security None),
// asks for the whole framebuffer and returns its size and how many
// distinct pixel values its first rectangle holds: a screen with text on
// it has more than one.
func screenOf(rw io.ReadWriter) (w, h, colours int, err error) {
	ver := make([]byte, 12)
	if _, err = io.ReadFull(rw, ver); err != nil {
		return 0, 0, 0, fmt.Errorf("version: %w", err)
	}
	if string(ver[:8]) != "RFB 003." {
		return 0, 0, 0, fmt.Errorf("not RFB: %q", ver)
	}
	if _, err = io.WriteString(rw, "RFB 003.008\n"); err != nil {
		return
	}
	var n [1]byte
	if _, err = io.ReadFull(rw, n[:]); err != nil || n[0] == 0 {
		return 0, 0, 0, fmt.Errorf("security types: %d %v", n[0], err)
	}
	types := make([]byte, n[0])
	if _, err = io.ReadFull(rw, types); err != nil {
		return
	}
	if _, err = rw.Write([]byte{1}); err != nil { // None
		return
	}
	var result uint32
	if err = binary.Read(rw, binary.BigEndian, &result); err != nil || result != 0 {
		return 0, 0, 0, fmt.Errorf("security result %d: %v", result, err)
	}
	if _, err = rw.Write([]byte{1}); err != nil { // ClientInit, shared
		return
	}
	var init struct {
		W, H   uint16
		BPP    uint8
		Rest   [15]uint8
		Length uint32
	}
	if err = binary.Read(rw, binary.BigEndian, &init); err != nil {
		return
	}
	if _, err = io.CopyN(io.Discard, rw, int64(init.Length)); err != nil {
		return
	}
	req := []byte{3, 0, 0, 0, 0, 0}
	req = binary.BigEndian.AppendUint16(req, init.W)
	req = binary.BigEndian.AppendUint16(req, init.H)
	if _, err = rw.Write(req); err != nil {
		return
	}
	var upd struct {
		Type, Pad uint8
		Rects     uint16
	}
	if err = binary.Read(rw, binary.BigEndian, &upd); err != nil || upd.Type != 0 || upd.Rects == 0 {
		return 0, 0, 0, fmt.Errorf("framebuffer update: type %d, %d rectangles: %v", upd.Type, upd.Rects, err)
	}
	var rect struct {
		X, Y, W, H uint16
		Encoding   int32
	}
	if err = binary.Read(rw, binary.BigEndian, &rect); err != nil || rect.Encoding != 0 {
		return 0, 0, 0, fmt.Errorf("rectangle encoding %d (want raw): %v", rect.Encoding, err)
	}
	px := int(init.BPP) / 8
	pixels := make([]byte, int(rect.W)*int(rect.H)*px)
	if _, err = io.ReadFull(rw, pixels); err != nil {
		return
	}
	seen := map[string]bool{}
	for i := 0; i+px <= len(pixels); i += px {
		seen[string(pixels[i:i+px])] = true
	}
	return int(init.W), int(init.H), len(seen), nil
}

// deadline bounds a console conversation.
const deadline = 30 * time.Second
