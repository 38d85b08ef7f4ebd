package agent

import (
	"crypto/sha256"
	"image"
)

// screenWatch decides the screen boot signal (not wired into verify yet, see
// there): the screen has changed from
// the first (firmware) picture, is not blank, and stays the same for
// `stable` consecutive pictures.
type screenWatch struct {
	first  [32]byte
	last   [32]byte
	seen   int
	same   int
	stable int
}

func fingerprint(img image.Image) ([32]byte, bool) {
	b := img.Bounds()
	h := sha256.New()
	blank := true
	var first [4]uint32
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if x == b.Min.X && y == b.Min.Y {
				first = [4]uint32{r, g, bl}
			} else if blank && [4]uint32{r, g, bl} != first {
				blank = false
			}
			h.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)})
		}
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, blank
}

// add takes the next picture and reports whether the signal fired.
func (w *screenWatch) add(img image.Image) bool {
	fp, blank := fingerprint(img)
	w.seen++
	if w.seen == 1 {
		w.first, w.last = fp, fp
		return false
	}
	if fp == w.last {
		w.same++
	} else {
		w.same = 0
	}
	w.last = fp
	return !blank && fp != w.first && w.same >= w.stable
}
