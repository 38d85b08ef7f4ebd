package vhdx

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const gib = 1 << 30

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func open(t *testing.T, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	im, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// readAll reads the whole virtual disk through the reader.
func readAll(t *testing.T, im *Image) []byte {
	t.Helper()
	out := make([]byte, im.Size())
	for off := int64(0); off < im.Size(); off += 3 << 20 { // reads that straddle blocks
		n := min(3<<20, im.Size()-off)
		if _, err := im.ReadAt(out[off:off+n], off); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// VHDX files qemu-img made (dynamic and fixed, both sector sizes qemu
// writes) read back exactly as qemu-img itself converts them to raw.
func TestVHDXFilesReadAsQEMUReadsThem(t *testing.T) {
	for _, tc := range []struct{ name, opts string }{
		{"dynamic", "subformat=dynamic"},
		{"dynamic, 1 MiB blocks", "subformat=dynamic,block_size=1M"},
		{"fixed", "subformat=fixed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img, raw := filepath.Join(dir, "d.vhdx"), filepath.Join(dir, "d.raw")
			run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", tc.opts, img, "96M")
			run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0xaa 0 1M", "-c", "write -P 0x5c 33M 4k", "-c", "write -P 0x11 95M 1M", img)
			run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, raw)
			want, _ := os.ReadFile(raw)
			im := open(t, img)
			if im.Size() != 96<<20 || (tc.name == "fixed") != im.Fixed {
				t.Fatalf("size %d fixed %v", im.Size(), im.Fixed)
			}
			if got := readAll(t, im); !bytes.Equal(got, want) {
				t.Fatal("the disk read differs from qemu-img's conversion")
			}
			var allocated int64
			for _, e := range im.Allocated() {
				allocated += e.Length
			}
			// Three writes: at most three blocks hold data (qemu-img marks a
			// fixed disk's unwritten blocks as zero blocks).
			if allocated == 0 || allocated > 3*im.blockSize {
				t.Fatalf("a disk with three writes has %d bytes allocated in %d-byte blocks", allocated, im.blockSize)
			}
		})
	}
}

// A sparse 1 TiB disk: only what was written is allocated, the rest reads
// as zeros, and opening it reads no more than its structures.
func TestASparseTebibyteDiskListsOnlyItsData(t *testing.T) {
	img := filepath.Join(t.TempDir(), "big.vhdx")
	run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=32M", img, "1T")
	run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0x42 0 64k", "-c", "write -P 0x43 512G 1M", "-c", "write -P 0x44 1023G 4k", img)
	im := open(t, img)
	if im.Size() != 1<<40 {
		t.Fatalf("size %d", im.Size())
	}
	got := im.Allocated()
	want := []Extent{{0, 32 << 20}, {512 * gib, 32 << 20}, {1023 * gib, 32 << 20}}
	if len(got) != len(want) {
		t.Fatalf("allocated %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %+v, want %+v", got, want)
		}
	}
	p := make([]byte, 2<<20)
	if _, err := im.ReadAt(p, 512*gib-1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p[:1<<20], make([]byte, 1<<20)) || !bytes.Equal(p[1<<20:], bytes.Repeat([]byte{0x43}, 1<<20)) {
		t.Fatal("the read across a hole and data")
	}
	if _, err := im.ReadAt(p, 1<<40-1<<20); err == nil {
		t.Fatal("a read past the end")
	}
}

// Hostile or unsupported files are refused with what is wrong.
func TestBrokenAndUnsupportedVHDXFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vhdx")
	run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=dynamic", base, "64M")
	run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0xaa 0 1M", base)
	good, _ := os.ReadFile(base)
	probe := &Image{f: bytes.NewReader(good), fileSize: int64(len(good))}
	bat, meta, err := probe.regions()
	if err != nil {
		t.Fatal(err)
	}
	// item is the file offset of a metadata item.
	item := func(b []byte, id guid) int {
		m := b[meta.off:]
		for i := range int(binary.LittleEndian.Uint16(m[10:])) {
			e := m[32+32*i:]
			if bytes.Equal(e[:16], id[:]) {
				return int(meta.off) + int(binary.LittleEndian.Uint32(e[16:]))
			}
		}
		t.Fatalf("no item %x", id)
		return 0
	}
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	putCRC := func(b []byte, off, size int) {
		binary.LittleEndian.PutUint32(b[off+4:], 0)
		binary.LittleEndian.PutUint32(b[off+4:], crcOf(b[off:off+size]))
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"not a VHDX", []byte("KDMV not a vhdx at all"), "not a VHDX"},
		{"both headers corrupt", edit(func(b []byte) { b[headerOffset1+20]++; b[headerOffset2+20]++ }), "no valid header"},
		{"both region tables corrupt", edit(func(b []byte) { b[regionOffset1+20]++; b[regionOffset2+20]++ }), "no valid region table"},
		{"a log to replay", edit(func(b []byte) {
			for _, off := range []int{headerOffset1, headerOffset2} {
				b[off+48] = 1
				putCRC(b, off, headerSize)
			}
		}), "log to replay"},
		{"a region outside the file", edit(func(b []byte) {
			for _, off := range []int{regionOffset1, regionOffset2} {
				binary.LittleEndian.PutUint64(b[off+16+16:], 1<<40)
				putCRC(b, off, regionSize)
			}
		}), "not inside the file"},
		{"truncated", good[:300<<10], "not inside the file"},
		{"a differencing disk", edit(func(b []byte) { b[item(b, metaFileParams)+4] |= 2 }), "differencing"},
		{"a block size of 3 MiB", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[item(b, metaFileParams):], 3<<20) }), "block size"},
		{"a 128 TiB disk", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[item(b, metaDiskSize):], 128<<40) }), "at most 64 TiB"},
		{"a sector of 1000 bytes", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[item(b, metaSectorSize):], 1000) }), "sector size"},
		{"a block outside the file", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[bat.off:], 6|uint64(1<<30)<<20) }), "outside the file"},
		{"a partially present block", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[bat.off:], 7) }), "partially present"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(path, tc.file, 0o600); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(path)
		_, err := Open(f, int64(len(tc.file)))
		f.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Open(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("the file the edits started from: %v", err)
	}
}

func crcOf(b []byte) uint32 {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c[4:], 0)
	return crc32Checksum(c)
}
