package progressbar

import (
	"bytes"
	"strings"
	"testing"
)

func TestBytesAreWrittenForPeople(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 8 << 20: "8.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestABarEndsFullOnItsLine(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "vdb", 8<<20, 4<<20)
	b.Add(4 << 20)
	b.Finish()
	s := out.String()
	if !strings.Contains(s, "[==============================] 100%  8.0 MiB / 8.0 MiB") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("%q", s)
	}
	New(nil, "x", 1, 0).Finish() // draws nothing, and does not panic
}
