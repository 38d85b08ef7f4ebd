// Package progressbar draws a long step's progress on one line of a
// terminal (restorectl's backup jobs, image exports and downloads): a bar,
// the percentage, the bytes done of the total and the rate, at most four
// times a second; and formats byte counts for people.
package progressbar

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Bar is one step's progress line.
type Bar struct {
	w     io.Writer
	label string
	total int64
	// from is what was done before this run (a resumed download): the
	// rate counts only what this run did.
	from, done int64
	start      time.Time
	last       time.Time
	drawn      int64 // done at the last draw
}

// New returns a bar for total bytes of which from are done already; a nil
// w draws nothing.
func New(w io.Writer, label string, total, from int64) *Bar {
	return &Bar{w: w, label: label, total: total, from: from, done: from, start: time.Now()}
}

// Add counts n more bytes done.
func (b *Bar) Add(n int64) { b.Set(b.done + n) }

// Set says how much is done.
func (b *Bar) Set(done int64) {
	b.done = done
	if time.Since(b.last) >= 250*time.Millisecond {
		b.draw()
	}
}

// Finish draws the last state and ends the line.
func (b *Bar) Finish() {
	if b.w == nil {
		return
	}
	if b.drawn != b.done || b.last.IsZero() {
		b.draw()
	}
	fmt.Fprintln(b.w)
}

func (b *Bar) draw() {
	if b.w == nil {
		return
	}
	b.last, b.drawn = time.Now(), b.done
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.done)/float64(b.total), 1)
	}
	const width = 30
	n := int(frac * width)
	rate := float64(b.done-b.from) / max(time.Since(b.start).Seconds(), 1e-3)
	fmt.Fprintf(b.w, "\r  %-4s [%s%s] %3.0f%%  %s / %s  %s/s ", b.label, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		frac*100, Bytes(b.done), Bytes(b.total), Bytes(int64(rate)))
}

// Bytes formats a byte count for people (1.5 MiB).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
