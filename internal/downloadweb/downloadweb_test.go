package downloadweb

import (
	"errors"
	"testing"
)

func TestRangeHeadersServeOneRangeAndRefuseTheRest(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		header   string
		start, n int64
		partial  bool
		err      bool
	}{
		{"", 0, size, false, false},
		{"bytes=0-", 0, size, true, false},
		{"bytes=100-199", 100, 100, true, false},
		{"bytes=900-5000", 900, 100, true, false},
		{"bytes=-10", 990, 10, true, false},
		{"bytes=-5000", 0, size, true, false},
		{"bytes=999-", 999, 1, true, false},
		{"bytes=1000-", 0, 0, false, true},
		{"bytes=200-100", 0, 0, false, true},
		{"bytes=0-1,5-6", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"items=0-1", 0, 0, false, true},
		{"bytes=x-", 0, 0, false, true},
		{"bytes=-1-2", 0, 0, false, true},
	} {
		start, n, partial, err := byteRange(c.header, size)
		if c.err {
			if !errors.Is(err, ErrRange) {
				t.Errorf("%q: %d+%d %v, want refused", c.header, start, n, err)
			}
			continue
		}
		if err != nil || start != c.start || n != c.n || partial != c.partial {
			t.Errorf("%q: %d+%d partial %v err %v, want %d+%d partial %v", c.header, start, n, partial, err, c.start, c.n, c.partial)
		}
	}
}
