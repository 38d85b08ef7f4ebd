package kvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image" // libvirt sends PNG
	"strconv"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

// Screenshot returns the domain's screen as an image and its encoded bytes.
// It runs on its own short-lived connection (see screenConn for why go-libvirt's
// DomainScreenshot is not used), under ctx's deadline.
func (d *Driver) Screenshot(ctx context.Context, name string) (image.Image, []byte, error) {
	if d.rawDial == nil {
		return nil, nil, errors.New("screenshots need a local libvirt socket (kvm.NewLocal)")
	}
	c, err := openScreenConn(ctx, d.rawDial)
	if err != nil {
		return nil, nil, fmt.Errorf("screenshot %s: %w", name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.close(cctx)
	}()
	raw, err := c.screenshot(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("screenshot %s: %w", name, err)
	}
	img, err := DecodeScreen(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("screenshot %s: %w", name, err)
	}
	return img, raw, nil
}

// AsPNG returns a screenshot's bytes as PNG: raw itself when libvirt sent a
// PNG, img re-encoded when it sent PPM.
func AsPNG(raw []byte, img image.Image) ([]byte, error) {
	return hypervisor.Screen{Image: img, Raw: raw}.PNG()
}

// DecodeScreen decodes a PNG or a binary PPM (P6) screenshot.
func DecodeScreen(b []byte) (image.Image, error) {
	if bytes.HasPrefix(b, []byte("P6")) {
		return decodePPM(b)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("screenshot is neither PNG nor PPM (%d bytes): %w", len(b), err)
	}
	return img, nil
}

func decodePPM(b []byte) (image.Image, error) {
	fields := make([]int, 0, 3)
	i := 2
	for len(fields) < 3 {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
		if i < len(b) && b[i] == '#' { // comment line
			for i < len(b) && b[i] != '\n' {
				i++
			}
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(b[i:j]))
		if err != nil || j == i {
			return nil, fmt.Errorf("bad PPM header")
		}
		fields = append(fields, n)
		i = j
	}
	i++ // one whitespace byte before the pixels
	w, h, maxv := fields[0], fields[1], fields[2]
	if w <= 0 || h <= 0 || w > 8192 || h > 8192 || maxv != 255 || len(b)-i < w*h*3 {
		return nil, fmt.Errorf("unsupported PPM %dx%d max %d", w, h, maxv)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < w*h; p++ {
		img.Pix[p*4], img.Pix[p*4+1], img.Pix[p*4+2], img.Pix[p*4+3] = b[i+p*3], b[i+p*3+1], b[i+p*3+2], 255
	}
	return img, nil
}
