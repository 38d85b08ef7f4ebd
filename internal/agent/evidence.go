package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/restored/restored/internal/kvm"
)

// evidenceDir holds what a failed boot left to look at, per restore:
// the last screenshot (screen.png) and the serial console (serial.log).
func (a *Agent) evidenceDir(id string) string {
	return filepath.Join(a.cfg.WorkDir, "evidence", id)
}

// keepEvidence saves the failed boot's last screenshot and serial console
// outside the restore's work dir (which teardown removes) and returns the
// part of the state reason that describes them.
func (a *Agent) keepEvidence(id string, w bootWatch) string {
	dir := a.evidenceDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		a.log.Error("keeping boot evidence", "restore", id, "err", err)
		return ""
	}
	var parts []string
	serial, _ := os.ReadFile(a.serialPath(id))
	if len(serial) > 64<<10 {
		serial = serial[len(serial)-64<<10:]
	}
	_ = os.WriteFile(filepath.Join(dir, "serial.log"), serial, 0o600)
	if line := lastLine(serial); line != "" {
		parts = append(parts, fmt.Sprintf("last serial line %q", line))
	} else {
		parts = append(parts, "nothing on the serial console")
	}
	if len(w.lastScreen) > 0 {
		pic := w.lastScreen
		if img, err := kvm.DecodeScreen(pic); err == nil {
			if p, err := kvm.AsPNG(pic, img); err == nil {
				pic = p
			}
		}
		_ = os.WriteFile(filepath.Join(dir, "screen.png"), pic, 0o600)
		parts = append(parts, "screen "+w.screenSize)
	}
	parts = append(parts, fmt.Sprintf("evidence in %s on host %s", dir, a.cfg.HostID))
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

// pruneEvidence removes evidence older than the retention period.
func (a *Agent) pruneEvidence() {
	root := filepath.Join(a.cfg.WorkDir, "evidence")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > a.cfg.EvidenceRetention {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}
