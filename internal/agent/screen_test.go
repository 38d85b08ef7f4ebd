package agent

import (
	"image"
	"image/color"
	"testing"
)

func screen(c color.Color, mark bool) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 64; i++ {
		img.Set(i%8, i/8, c)
	}
	if mark {
		img.Set(3, 3, color.White)
	}
	return img
}

func TestScreenSignal(t *testing.T) {
	firmware := screen(color.Black, true)
	booted := screen(color.RGBA{0, 0, 80, 255}, true)
	blank := screen(color.Black, false)
	tests := []struct {
		name   string
		frames []image.Image
		want   bool
	}{
		{"changed and stable", []image.Image{firmware, booted, booted, booted}, true},
		{"changed but not yet stable", []image.Image{firmware, booted, booted}, false},
		{"never changed from the firmware screen (frozen)", []image.Image{firmware, firmware, firmware, firmware, firmware}, false},
		{"blank screen is no proof", []image.Image{firmware, blank, blank, blank, blank}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &screenWatch{stable: 2}
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
