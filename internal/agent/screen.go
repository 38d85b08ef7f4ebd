package agent

import (
	"image"

	"github.com/restored/restored/internal/kinds"
)

// screenWatch decides the screen boot signal from successive screenshots.
//
// It fires when the guest has taken the display over from the firmware and
// then stays put:
//   - left the firmware's display mode: the firmware's screen (its size,
//     `firmware`) was seen, and the picture's size now differs from it
//     (SeaBIOS shows a 720x400 text screen; an OS switches to its own
//     graphics mode). Pictures before the firmware's screen (QEMU's "display
//     not initialized" placeholder) are ignored. A change of content alone
//     is not enough: the firmware's own "No bootable device" screen is a
//     changed, stable, non blank screen in the same mode, and must never pass;
//   - not blank (a single colour);
//   - stable: `stable` consecutive pictures differ from the previous one in
//     fewer than 0.1 % of their pixels (a blinking cursor is not a change).
type screenWatch struct {
	firmware image.Point
	stable   int

	armed bool // the firmware's screen was seen
	fired bool // the signal fired at least once
	prev  *image.RGBA
	same  int
}

// biosScreen is the size of SeaBIOS's text screen as QEMU renders it
// (80x25 characters of 9x16 pixels); qemuPlaceholder the size of the picture
// QEMU shows until the guest initialises its display.
var (
	biosScreen      = image.Pt(720, 400)
	qemuPlaceholder = image.Pt(640, 480)
)

// newScreenWatch returns the watch for a firmware; the UEFI firmware's
// screen size is learnt (OVMF's depends on its build and variables) as the
// first picture that is not QEMU's placeholder. adopted says the boot began
// before the agent watched: the placeholder is long gone.
func newScreenWatch(firmware kinds.Firmware, stable int, adopted bool) *screenWatch {
	w := &screenWatch{stable: stable, armed: adopted && firmware != kinds.UEFI}
	if firmware != kinds.UEFI {
		w.firmware = biosScreen
	}
	return w
}

// shorten makes the watch ask for at most stable unchanged pictures from
// now on (the boot is proved by other evidence: see corroborated).
func (w *screenWatch) shorten(stable int) {
	w.stable = min(w.stable, max(stable, 1))
}

// add takes the next picture and reports whether the signal fired.
func (w *screenWatch) add(img image.Image) bool {
	cur := toRGBA(img)
	size := cur.Bounds().Size()
	if !w.armed {
		if w.firmware == (image.Point{}) && size != qemuPlaceholder {
			w.firmware = size // UEFI: its first screen
		}
		w.armed = size == w.firmware
		w.prev = cur
		return false
	}
	if w.prev != nil && nearlySame(w.prev, cur) {
		w.same++
	} else {
		w.same = 0
	}
	w.prev = cur
	ok := size != w.firmware && !blank(cur) && w.same >= w.stable
	w.fired = w.fired || ok
	return ok
}

func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok {
		return r
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// nearlySame: same size and under 0.1 % of the pixels differ.
func nearlySame(a, b *image.RGBA) bool {
	if a.Bounds().Size() != b.Bounds().Size() {
		return false
	}
	w, h := a.Bounds().Dx(), a.Bounds().Dy()
	allowed := w * h / 1000
	diff := 0
	for y := 0; y < h; y++ {
		ra := a.Pix[y*a.Stride : y*a.Stride+w*4]
		rb := b.Pix[y*b.Stride : y*b.Stride+w*4]
		for x := 0; x < w*4; x += 4 {
			if ra[x] != rb[x] || ra[x+1] != rb[x+1] || ra[x+2] != rb[x+2] {
				diff++
				if diff > allowed {
					return false
				}
			}
		}
	}
	return true
}

// blank: every pixel has the first pixel's colour.
func blank(img *image.RGBA) bool {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w == 0 || h == 0 {
		return true
	}
	p0 := img.Pix[0:3]
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+w*4]
		for x := 0; x < w*4; x += 4 {
			if row[x] != p0[0] || row[x+1] != p0[1] || row[x+2] != p0[2] {
				return false
			}
		}
	}
	return true
}
