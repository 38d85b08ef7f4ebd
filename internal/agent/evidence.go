package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

// evidence is where the agent keeps what a boot or a verification left to
// look at, per restore, for a retention period: <work-dir>/evidence/<id>/.
// It lives outside the restore's work dir, which the teardown removes.
type evidence struct {
	root      string
	retention time.Duration
	hostID    string
	obs       hypervisor.Observer
	log       *slog.Logger
}

func (e *evidence) dir(id string) string { return filepath.Join(e.root, id) }

// screenshot is where a verification's screenshot n is kept.
func (e *evidence) screenshot(id string, n int32) string {
	return filepath.Join(e.dir(id), fmt.Sprintf("%d.png", n))
}

// keepFailedBoot saves the failed boot's last screenshot (screen.png) and
// serial console (serial.log) and returns the part of the state reason
// that describes them.
func (e *evidence) keepFailedBoot(ctx context.Context, id string, w bootWatch) string {
	dir := e.dir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.log.Error("keeping boot evidence", "restore", id, "err", err)
		return ""
	}
	var parts []string
	serial, _ := e.obs.Serial(ctx, id)
	if len(serial) > 64<<10 {
		serial = serial[len(serial)-64<<10:]
	}
	_ = os.WriteFile(filepath.Join(dir, "serial.log"), serial, 0o600)
	if line := lastLine(serial); line != "" {
		parts = append(parts, fmt.Sprintf("last serial line %q", line))
	} else {
		parts = append(parts, "nothing on the serial console")
	}
	if pic, err := w.lastScreen.PNG(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "screen.png"), pic, 0o600)
		parts = append(parts, "screen "+w.lastScreen.Size())
	}
	parts = append(parts, fmt.Sprintf("evidence in %s on host %s", dir, e.hostID))
	return "; " + strings.Join(parts, "; ")
}

// lastLine is the last non-empty line of a console log, printable and short.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\r\n\t "), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	line = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, line)
	if len(line) > 120 {
		line = line[:120] + "…"
	}
	return line
}

// prune removes evidence older than the retention period.
func (e *evidence) prune() {
	entries, err := os.ReadDir(e.root)
	if err != nil {
		return
	}
	for _, x := range entries {
		if info, err := x.Info(); err == nil && time.Since(info.ModTime()) > e.retention {
			_ = os.RemoveAll(filepath.Join(e.root, x.Name()))
		}
	}
}
