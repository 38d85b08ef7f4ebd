package nbd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// image makes a 64 MiB qcow2 holding 0xAA at 0..1 MiB and 0xBB at 8 MiB..8.5 MiB.
func image(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", p, "64M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 0 1M", "-c", "write -P 0xbb 8M 512k", p)
	return p
}

// serve runs qemu-nbd on image (a real NBD server) and returns its socket.
func serve(t *testing.T, image string, args ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	cmd := exec.Command("qemu-nbd", append([]string{"--persistent", "-f", "qcow2", "-x", "disk", "-k", sock}, append(args, image)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu-nbd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// The socket exists from bind(); it answers only after listen(): wait
	// for a connection to be accepted (CI once dialled in between).
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("qemu-nbd did not listen on %s: %s", sock, stderr.String())
	return ""
}

func dial(t *testing.T, sock string, opts Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "unix", sock, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestReadReturnsTheImageAndCountsOnlyData(t *testing.T) {
	c := dial(t, serve(t, image(t), "-r"), Options{Export: "disk"})
	if c.Size() != 64*mib || !c.ReadOnly() {
		t.Fatalf("size %d read-only %v, want 64 MiB read-only", c.Size(), c.ReadOnly())
	}
	for _, tc := range []struct {
		off  int64
		n    int
		want byte
	}{
		{0, mib, 0xaa},
		{8 * mib, 512 << 10, 0xbb},
		{32 * mib, mib, 0}, // never written: a hole
	} {
		p := bytes.Repeat([]byte{0x55}, tc.n)
		if _, err := c.ReadAt(p, tc.off); err != nil {
			t.Fatalf("read %d at %d: %v", tc.n, tc.off, err)
		}
		if !bytes.Equal(p, bytes.Repeat([]byte{tc.want}, tc.n)) {
			t.Errorf("at %d: got other bytes than %#x", tc.off, tc.want)
		}
	}
	if c.BytesRead != mib+512<<10 {
		t.Errorf("BytesRead = %d, want %d (holes are not data)", c.BytesRead, mib+512<<10)
	}
	// A read larger than one request (32 MiB) is split and still right.
	big := make([]byte, 40*mib)
	if _, err := c.ReadAt(big, 0); err != nil {
		t.Fatal(err)
	}
	if big[0] != 0xaa || big[8*mib] != 0xbb || big[20*mib] != 0 {
		t.Errorf("40 MiB read: wrong bytes")
	}
	if _, err := c.ReadAt(make([]byte, 1), 64*mib); err == nil {
		t.Error("a read past the end succeeded")
	}
}

func TestBaseAllocationFindsTheData(t *testing.T) {
	c := dial(t, serve(t, image(t), "-r"), Options{Export: "disk", MetaContexts: []string{BaseAllocation}})
	ext, err := c.BlockStatus(BaseAllocation, 0, c.Size())
	if err != nil {
		t.Fatal(err)
	}
	var data []Extent
	var covered int64
	for _, e := range ext {
		covered += e.Length
		if e.Flags&StateHole == 0 {
			data = append(data, e)
		}
	}
	if covered != c.Size() {
		t.Errorf("extents cover %d bytes, want %d", covered, c.Size())
	}
	want := []Extent{{0, mib, 0}, {8 * mib, 512 << 10, 0}}
	if len(data) != 2 || data[0] != want[0] || data[1] != want[1] {
		t.Errorf("allocated extents %+v, want %+v", data, want)
	}
}

func TestDirtyBitmapHoldsOnlyWhatChangedSinceIt(t *testing.T) {
	img := image(t)
	run(t, "qemu-img", "bitmap", "--add", img, "since-full")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0xcc 4M 64k", "-c", "write -P 0xdd 40M 192k", img)
	ctxName := DirtyBitmapPrefix + "since-full"
	c := dial(t, serve(t, img, "-r", "-B", "since-full"), Options{Export: "disk", MetaContexts: []string{ctxName}})
	ext, err := c.BlockStatus(ctxName, 0, c.Size())
	if err != nil {
		t.Fatal(err)
	}
	var dirty []Extent
	for _, e := range ext {
		if e.Flags&StateDirty != 0 {
			dirty = append(dirty, e)
		}
	}
	want := []Extent{{4 * mib, 64 << 10, StateDirty}, {40 * mib, 192 << 10, StateDirty}}
	if len(dirty) != 2 || dirty[0] != want[0] || dirty[1] != want[1] {
		t.Fatalf("dirty extents %+v, want %+v", dirty, want)
	}
}

func TestWritesLandInTheImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "out.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "16M")
	sock := serve(t, img)
	c := dial(t, sock, Options{Export: "disk"})
	if c.ReadOnly() {
		t.Fatal("a writable export says read-only")
	}
	if _, err := c.WriteAt(bytes.Repeat([]byte{0x5a}, 128<<10), 2*mib); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Read back through a second connection: the server has it.
	c2 := dial(t, sock, Options{Export: "disk"})
	p := make([]byte, 128<<10)
	if _, err := c2.ReadAt(p, 2*mib); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{0x5a}, len(p))) {
		t.Fatalf("read back: %v", err)
	}
}

func TestRefusalsAreClear(t *testing.T) {
	sock := serve(t, image(t), "-r")
	ctx := context.Background()
	if _, err := Dial(ctx, "unix", sock, Options{Export: "nope"}); !errors.Is(err, ErrUnknownExport) {
		t.Errorf("unknown export: %v, want ErrUnknownExport", err)
	}
	if _, err := Dial(ctx, "unix", sock, Options{Export: "disk", MetaContexts: []string{DirtyBitmapPrefix + "none"}}); err == nil || !strings.Contains(err.Error(), "no metadata context") {
		t.Errorf("missing bitmap: %v", err)
	}
	c := dial(t, sock, Options{Export: "disk"})
	if _, err := c.WriteAt([]byte{1}, 0); err == nil {
		t.Error("a write to a read-only export succeeded")
	}
	if _, err := c.BlockStatus(BaseAllocation, 0, 1); err == nil {
		t.Error("block status of a context never negotiated succeeded")
	}
	if _, err := Dial(ctx, "unix", filepath.Join(t.TempDir(), "absent"), Options{Export: "disk"}); err == nil {
		t.Error("dial of a missing socket succeeded")
	}
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		err  string
	}{
		{"nbd://127.0.0.1:10900/vda-secret", Target{"tcp", "127.0.0.1:10900", "vda-secret", false}, ""},
		{"nbd://127.0.0.1/x", Target{"tcp", "127.0.0.1:10809", "x", false}, ""},
		{"nbds://198.51.100.7:10809/rst-kvm-01.vda", Target{"tcp", "198.51.100.7:10809", "rst-kvm-01.vda", true}, ""},
		{"nbd+unix:///vda?socket=/run/x.sock", Target{"unix", "/run/x.sock", "vda", false}, ""},
		{"nbd+unix:///vda", Target{}, "no socket"},
		{"http://x/y", Target{}, "scheme"},
		{"nbd:///x", Target{}, "no host"},
	} {
		got, err := ParseURI(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
		if back, _ := ParseURI(got.String()); back != got {
			t.Errorf("%s: String() %q does not parse back", tc.in, got.String())
		}
	}
}
