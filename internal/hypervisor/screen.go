package hypervisor

import (
	"bytes"
	"errors"
	"image/png"
	"strconv"
)

// ErrNoVM is what a driver's Observer answers (wrapped) when the restore
// has no VM on the host.
var ErrNoVM = errors.New("the restore has no VM here")

// PNG returns the screenshot as PNG: Raw itself when the hypervisor sent a
// PNG, the image encoded otherwise.
func (s Screen) PNG() ([]byte, error) {
	if bytes.HasPrefix(s.Raw, []byte("\x89PNG")) {
		return s.Raw, nil
	}
	if s.Image == nil {
		return nil, errors.New("no screenshot")
	}
	var b bytes.Buffer
	if err := png.Encode(&b, s.Image); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Size is the screen's size as "WxH".
func (s Screen) Size() string {
	if s.Image == nil {
		return "0x0"
	}
	b := s.Image.Bounds()
	return strconv.Itoa(b.Dx()) + "x" + strconv.Itoa(b.Dy())
}
