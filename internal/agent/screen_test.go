package agent

import (
	"image"
	"image/color"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

// screen draws a w×h picture in colour c with a small "text" mark when mark
// is set, and a cursor block when cursor is set.
func screen(w, h int, c color.Color, mark, cursor bool) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	if mark {
		for x := 10; x < 60; x++ {
			img.Set(x, 10, color.White)
		}
	}
	if cursor {
		for x := 70; x < 78; x++ {
			img.Set(x, 11, color.White)
		}
	}
	return img
}

func TestScreenSignalFiresOnlyWhenTheGuestTookOverTheDisplayAndSettled(t *testing.T) {
	bios := screen(720, 400, color.Black, true, false)
	noBootableDevice := screen(720, 400, color.Black, true, true) // same mode, new text
	os := screen(640, 480, color.RGBA{0, 0, 80, 255}, true, false)
	osCursor := screen(640, 480, color.RGBA{0, 0, 80, 255}, true, true)
	osOther := screen(640, 480, color.RGBA{80, 0, 0, 255}, true, false)
	blankOS := screen(640, 480, color.Black, false, false)
	placeholder := screen(640, 480, color.Black, true, false) // QEMU: display not initialized
	tests := []struct {
		name   string
		frames []image.Image
		want   bool
	}{
		{"left the firmware mode and stayed put", []image.Image{bios, os, os, os}, true},
		{"a blinking cursor still counts as stable", []image.Image{bios, os, osCursor, os, osCursor}, true},
		{"left the firmware mode but not yet stable", []image.Image{bios, os, os}, false},
		{"still changing", []image.Image{bios, os, osOther, os, osOther}, false},
		{"frozen on the firmware screen", []image.Image{bios, bios, bios, bios, bios}, false},
		{"firmware error screen: changed and stable, but the firmware's own mode", []image.Image{bios, noBootableDevice, noBootableDevice, noBootableDevice, noBootableDevice}, false},
		{"a blank screen is no proof", []image.Image{bios, blankOS, blankOS, blankOS, blankOS}, false},
		{"QEMU's placeholder before the firmware is not the guest's screen", []image.Image{placeholder, placeholder, placeholder, placeholder}, false},
		{"placeholder, firmware, then the OS", []image.Image{placeholder, bios, os, os, os}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newScreenWatch(kinds.BIOS, 2, false)
			got := false
			for _, f := range tt.frames {
				got = w.add(f)
			}
			if got != tt.want {
				t.Fatalf("signal %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScreenSignalUnderUEFILearnsTheFirmwareScreen(t *testing.T) {
	placeholder := screen(640, 480, color.Black, true, false)
	ovmf := screen(1280, 800, color.Black, true, false)
	ovmfShell := screen(1280, 800, color.Black, true, true)
	osMode := screen(1024, 768, color.RGBA{0, 0, 80, 255}, true, false)
	tests := []struct {
		name   string
		frames []image.Image
		want   bool
	}{
		{"OVMF, then the OS in its own mode", []image.Image{placeholder, ovmf, osMode, osMode, osMode}, true},
		{"OVMF drops to its shell: same mode, no proof", []image.Image{placeholder, ovmf, ovmfShell, ovmfShell, ovmfShell}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newScreenWatch(kinds.UEFI, 2, false)
			got := false
			for _, f := range tt.frames {
				got = w.add(f)
			}
			if got != tt.want {
				t.Fatalf("signal %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScreenSignalForAnAdoptedBootNeedsNoFirmwareScreen(t *testing.T) {
	osMode := screen(640, 480, color.RGBA{0, 0, 80, 255}, true, false)
	bios := screen(720, 400, color.Black, true, false)
	feed := func(img image.Image, n int) bool {
		w := newScreenWatch(kinds.BIOS, 2, true)
		fired := false
		for i := 0; i < n; i++ {
			fired = w.add(img) || fired
		}
		return fired
	}
	if !feed(osMode, 3) {
		t.Fatal("an adopted guest already in its own mode did not fire")
	}
	if feed(bios, 4) {
		t.Fatal("an adopted guest stuck in the firmware's text mode fired")
	}
}

// A boot the guest agent or the serial marker proved needs the screen
// still for a short time only; the firmware's error screen never passes.
func TestACorroboratedBootNeedsTheScreenStillOnlyBriefly(t *testing.T) {
	bios := screen(720, 400, color.Black, true, false)
	noBootableDevice := screen(720, 400, color.Black, true, true)
	os := screen(640, 480, color.RGBA{0, 0, 80, 255}, true, false)
	fires := func(stable int, short bool, frames ...image.Image) bool {
		w := newScreenWatch(kinds.BIOS, stable, false)
		if short {
			w.shorten(3)
		}
		got := false
		for _, f := range frames {
			got = w.add(f) || got
		}
		return got
	}
	four := []image.Image{bios, os, os, os, os}
	if fires(20, false, four...) {
		t.Fatal("the long settle passed after four pictures")
	}
	if !fires(20, true, four...) {
		t.Fatal("a corroborated boot's screen did not pass after three still pictures")
	}
	if fires(20, true, bios, noBootableDevice, noBootableDevice, noBootableDevice, noBootableDevice) {
		t.Fatal("the firmware's error screen passed")
	}
	if !corroborated([]string{signalScreen, signalGuestAgent}) || corroborated([]string{signalScreen}) {
		t.Fatal("corroborated: the guest agent or the serial marker, not the screen alone")
	}
}
