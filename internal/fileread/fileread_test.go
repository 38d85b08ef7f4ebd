//go:build linux

package fileread_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/diskview"
	"github.com/restored/restored/internal/fileread"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/testfsimage"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == fileread.ChildArg {
		os.Exit(fileread.Main())
	}
	if len(os.Args) > 3 && os.Args[1] == fileread.ProbeArg {
		os.Exit(fileread.ProbeMain())
	}
	os.Exit(m.Run())
}

// serve exports the raw disk files over NBD (our read-only server) and
// returns a function that makes one connected socket per disk.
func serve(t *testing.T, disks map[string]string) ([]fileread.DiskRef, func() []*os.File) {
	t.Helper()
	exports := map[string]nbd.Export{}
	var refs []fileread.DiskRef
	for name, p := range disks {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		exports[name] = nbd.Export{Size: st.Size(), ReadAt: func(_ context.Context, b []byte, off int64) error {
			_, err := f.ReadAt(b, off)
			return err
		}}
		refs = append(refs, fileread.DiskRef{Name: name, Export: name})
	}
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &nbd.Server{Exports: exports}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { l.Close(); srv.Close() })
	return refs, func() []*os.File {
		var out []*os.File
		for range refs {
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			f, err := c.(*net.UnixConn).File()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			out = append(out, f)
		}
		return out
	}
}

func run(t *testing.T, refs []fileread.DiskRef, socks []*os.File, op fileread.Op, path string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := runner(t).Run(ctx, fileread.Request{Op: op, Path: path, Disks: refs}, socks, &out)
	return out.Bytes(), err
}

// runner runs the test binary as the child, in an empty root of its own.
func runner(t *testing.T) fileread.Runner {
	t.Helper()
	root, err := fileread.EmptyRoot(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return fileread.Runner{Exe: os.Args[0], Root: root}
}

// The child sees no host file, writes none, reaches no network and is
// nobody; asking for more memory than its limit stops it.
func TestChildIsConfinedBeforeItReadsAnything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the confinement is root's to set up: run the tests as root (make test does)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runner(t)
	out, err := r.ProbeCommand(ctx, l.Addr().String()).Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var p fileread.Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("probe said %q: %v", out, err)
	}
	if p.UID != 65534 || p.GID != 65534 || p.Groups != 0 || p.SeesHost || p.WriteError == "" || p.DialError == "" {
		t.Fatalf("the child was not confined: %+v", p)
	}
	t.Logf("confined child: %+v", p)
	var stderr bytes.Buffer
	cmd := r.ProbeCommand(ctx, "alloc")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "out of memory") {
		t.Fatalf("asking for 3 GiB: %v, %q; want the runtime out of memory", err, stderr.String())
	}
}

func TestChildListsAndReadsThroughNBD(t *testing.T) {
	im := testfsimage.Build(t, t.TempDir())
	refs, socks := serve(t, map[string]string{"vda": im.GPT})
	b, err := run(t, refs, socks(), fileread.OpList, "/vda/part2/etc")
	if err != nil {
		t.Fatal(err)
	}
	l := listing(t, b)
	if l.Total != 2 || l.Entries[0].Name != "hostname" || l.Entries[1].Name != "secret" {
		t.Fatalf("listing of /etc: %+v", l)
	}
	b, err = run(t, refs, socks(), fileread.OpGet, "/vda/part2/data/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), testfsimage.Tree[3].SHA256(); got != want {
		t.Fatalf("big.bin: sha256 %s, want %s", got, want)
	}
}

func TestHostileFilesystemsGiveClearErrorsNeverAHostFile(t *testing.T) {
	imgs := testfsimage.Hostile(t, t.TempDir())
	for _, c := range []struct {
		image string
		op    fileread.Op
		path  string
		kinds []fileread.Kind
		says  string
	}{
		{testfsimage.CorruptSuperblock, fileread.OpList, "/vda/disk", []fileread.Kind{fileread.KindDamaged}, "damaged"},
		{testfsimage.DirLoop, fileread.OpTar, "/vda/disk/deep", []fileread.Kind{fileread.KindTooBig}, "nest deeper than"},
		{testfsimage.TraversalName, fileread.OpGet, "/vda/disk/" + testfsimage.TraversalEntry, []fileread.Kind{fileread.KindBadPath}, "not a path"},
		{testfsimage.CorruptSuperblock, fileread.OpGet, "/vda/disk/link", []fileread.Kind{fileread.KindDamaged}, ""},
		{testfsimage.HugeXFSDir, fileread.OpList, "/vda/disk/big", []fileread.Kind{fileread.KindDamaged, fileread.KindLimit}, ""},
	} {
		t.Run(c.image+"/"+string(c.op), func(t *testing.T) {
			refs, socks := serve(t, map[string]string{"vda": imgs[c.image]})
			out, err := run(t, refs, socks(), c.op, c.path)
			var f *fileread.Failure
			if !errors.As(err, &f) {
				t.Fatalf("%s %s: %v (%d bytes out), want a Failure", c.op, c.path, err, len(out))
			}
			ok := false
			for _, k := range c.kinds {
				ok = ok || f.Kind == k
			}
			if !ok || !strings.Contains(f.Message, c.says) {
				t.Fatalf("%s %s: %s: %q, want one of %v saying %q", c.op, c.path, f.Kind, f.Message, c.kinds, c.says)
			}
			if len(out) != 0 {
				t.Fatalf("%d bytes were written before the failure", len(out))
			}
			t.Logf("%s: %s", f.Kind, f.Message)
		})
	}
}

// A directory that claims 2^40 bytes of entries is read by its extents:
// the listing is its two real entries, in bounded time and memory.
func TestDirectoryClaimingHugeSizeListsItsRealEntries(t *testing.T) {
	imgs := testfsimage.Hostile(t, t.TempDir())
	refs, socks := serve(t, map[string]string{"vda": imgs[testfsimage.HugeDir]})
	b, err := run(t, refs, socks(), fileread.OpList, "/vda/disk/etc")
	if err != nil {
		t.Fatal(err)
	}
	l := listing(t, b)
	if l.Total != 2 || l.Entries[0].Name != "hostname" || l.Entries[1].Name != "secret" {
		t.Fatalf("listing of the huge /etc: %+v", l)
	}
}

func TestUnsafeNamesAreListedQuotedAndLeftOutOfArchives(t *testing.T) {
	imgs := testfsimage.Hostile(t, t.TempDir())
	refs, socks := serve(t, map[string]string{"vda": imgs[testfsimage.TraversalName]})
	b, err := run(t, refs, socks(), fileread.OpList, "/vda/disk")
	if err != nil {
		t.Fatal(err)
	}
	l := listing(t, b)
	var bad *diskview.Entry
	for i, e := range l.Entries {
		if e.Unsafe != "" {
			bad = &l.Entries[i]
		}
	}
	if bad == nil || bad.Name != `"`+testfsimage.TraversalEntry+`"` {
		t.Fatalf("no unsafe entry listed quoted: %+v", l.Entries)
	}
	b, err = run(t, refs, socks(), fileread.OpTar, "/vda/disk")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var skipped string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "..") || strings.HasPrefix(h.Name, "/") {
			t.Fatalf("archive entry %q leaves its directory", h.Name)
		}
		if strings.HasSuffix(h.Name, "RESTORE-SKIPPED.txt") {
			body, _ := io.ReadAll(tr)
			skipped = string(body)
		}
	}
	if !strings.Contains(skipped, testfsimage.TraversalEntry) {
		t.Fatalf("RESTORE-SKIPPED.txt does not name the entry: %q", skipped)
	}
}

func listing(t *testing.T, b []byte) fileread.Listing {
	t.Helper()
	var l fileread.Listing
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("the child's listing %q: %v", b, err)
	}
	return l
}
