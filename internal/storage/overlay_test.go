package storage

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestCreateOverlayNeverWritesTheBackingFile(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, []byte(strings.Repeat("backup", 1000)), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(base, 1<<20); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, base)
	infoBefore, _ := os.Stat(base)
	overlay := filepath.Join(dir, "overlay.qcow2")
	if err := CreateOverlay(context.Background(), overlay, base, kinds.Raw); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(overlay)
	h, err := ReadQCOW2Header(f)
	f.Close()
	if err != nil || h.BackingFile != base || h.BackingFormat != "raw" || h.Size != 1<<20 {
		t.Fatalf("overlay header %+v %v", h, err)
	}
	if fileSum(t, base) != before {
		t.Fatal("the backing file changed")
	}
	if infoAfter, _ := os.Stat(base); infoAfter.Mode() != infoBefore.Mode() || !infoAfter.ModTime().Equal(infoBefore.ModTime()) {
		t.Fatal("the backing file's mode or mtime changed")
	}
	if err := CreateOverlay(context.Background(), overlay, base, kinds.Raw); err == nil {
		t.Fatal("an existing overlay was overwritten")
	}
	for _, bad := range []struct {
		backing string
		format  kinds.DiskFormat
	}{{"base.raw", kinds.Raw}, {base, 0}, {base, 99}} {
		if err := CreateOverlay(context.Background(), filepath.Join(dir, "x.qcow2"), bad.backing, bad.format); err == nil {
			t.Errorf("accepted backing %q format %q", bad.backing, bad.format)
		}
	}
}

func TestOverlayOfA1TiBRecoveryPointCostsNothing(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.raw")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	overlay := filepath.Join(dir, "o.qcow2")
	if err := CreateOverlay(context.Background(), overlay, big, kinds.Raw); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(overlay)
	if fi.Size() > 1<<20 {
		t.Fatalf("overlay of a 1 TiB disk is %d bytes", fi.Size())
	}
}
