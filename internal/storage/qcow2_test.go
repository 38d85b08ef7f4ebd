package storage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Our header reader agrees with qemu-img on images qemu-img made itself.
func TestReadQCOW2HeaderOfRealImages(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img is required (make test installs qemu-utils): ", err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(base, 64<<20); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(qemuImg, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	run("create", "-q", "-f", "qcow2", filepath.Join(dir, "full.qcow2"), "1G")
	run("create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", filepath.Join(dir, "overlay.qcow2"))
	run("create", "-q", "-f", "qcow2", "-o", "compat=0.10", filepath.Join(dir, "v2.qcow2"), "3M")
	run("create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw")+",data_file_raw=on", filepath.Join(dir, "ext.qcow2"), "8M")
	tests := []struct {
		file                      string
		size                      int64
		version                   uint32
		backing, backingFmt, data string
	}{
		{"full.qcow2", 1 << 30, 3, "", "", ""},
		{"overlay.qcow2", 64 << 20, 3, base, "raw", ""},
		{"v2.qcow2", 3 << 20, 2, "", "", ""},
		{"ext.qcow2", 8 << 20, 3, "", "", filepath.Join(dir, "data.raw")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := ReadQCOW2Header(f)
			if err != nil {
				t.Fatal(err)
			}
			if h.Size != tt.size || h.Version != tt.version || h.BackingFile != tt.backing || h.BackingFormat != tt.backingFmt || h.DataFile != tt.data {
				t.Fatalf("got %+v", h)
			}
		})
	}
}

// The header reader never panics, whatever the bytes.
func FuzzReadQCOW2Header(f *testing.F) {
	for _, s := range []qcow2Spec{
		{size: 1 << 30},
		{size: 1 << 30, backing: "/etc/shadow", backingFormat: "raw"},
		{size: 1, dataFile: "x", incompat: incompatDataFile},
	} {
		f.Add(qcow2Bytes(s))
	}
	f.Add([]byte("QFI\xfb"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadQCOW2Header(bytes.NewReader(data))
	})
}
