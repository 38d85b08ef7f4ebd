package backupjob

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar on w (a terminal's stderr), at
// most four times a second.
type progress struct {
	w     io.Writer
	label string
	total int64
	done  int64
	start time.Time
	last  time.Time
	drawn int64 // done at the last draw
}

func newProgress(w io.Writer, label string, total int64) *progress {
	return &progress{w: w, label: label, total: total, start: time.Now()}
}

func (p *progress) add(n int64) {
	p.done += n
	if time.Since(p.last) >= 250*time.Millisecond {
		p.draw()
	}
}

func (p *progress) finish() {
	if p.drawn != p.done || p.last.IsZero() {
		p.draw()
	}
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	if p.w == nil {
		return
	}
	p.last, p.drawn = time.Now(), p.done
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	const width = 30
	n := int(frac * width)
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r  %-4s [%s%s] %3.0f%%  %s / %s  %s/s ", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		frac*100, Bytes(p.done), Bytes(p.total), Bytes(int64(rate)))
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
