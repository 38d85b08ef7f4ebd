package diskview_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path"
	"testing"

	"github.com/restored/restored/internal/diskview"
	"github.com/restored/restored/internal/testfsimage"
)

func openView(t *testing.T) *diskview.View {
	t.Helper()
	im := testfsimage.Build(t, t.TempDir())
	var disks []diskview.Disk
	for name, p := range map[string]string{"vda": im.GPT, "vdb": im.MBR} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		disks = append(disks, diskview.Disk{Name: name, R: f, Size: st.Size()})
	}
	return diskview.New(disks)
}

func digest(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestVolumesFindEachFilesystemOnGPTAndMBR(t *testing.T) {
	v := openView(t)
	want := map[string]string{"vda/part1": "fat", "vda/part2": "ext4", "vdb/part1": "xfs", "vdb/part2": "ntfs"}
	got := map[string]string{}
	for _, d := range []string{"vda", "vdb"} {
		es, err := v.List("/" + d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got[d+"/"+e.Name] = e.FS
		}
	}
	for k, fs := range want {
		if got[k] != fs {
			t.Errorf("%s: filesystem %q, want %q (all: %v)", k, got[k], fs, got)
		}
	}
}

func TestFilesReadBackWithNamesSizesModesAndContent(t *testing.T) {
	v := openView(t)
	for _, c := range []struct {
		vol   string
		files []testfsimage.File
		modes bool // FAT and NTFS keep no POSIX modes
	}{
		{"/vda/part2", testfsimage.Tree, true},
		{"/vdb/part1", testfsimage.Tree, true},
		{"/vda/part1", testfsimage.Tree, false},
		{"/vdb/part2", testfsimage.NTFSFiles, false},
	} {
		t.Run(c.vol, func(t *testing.T) {
			for _, f := range c.files {
				p := path.Join(c.vol, f.Path)
				e, err := v.Stat(p)
				if err != nil {
					t.Fatalf("stat %s: %v", p, err)
				}
				if e.Type != diskview.TypeFile || e.Size != int64(len(f.Data)) {
					t.Errorf("%s: %s of %d bytes, want a file of %d", p, e.Type, e.Size, len(f.Data))
				}
				if d, err := v.Stat(path.Dir(p)); err != nil || d.Type != diskview.TypeDir {
					t.Errorf("stat %s: %s, %v; want a directory", path.Dir(p), d.Type, err)
				}
				if c.modes && e.Mode.Perm() != f.Mode {
					t.Errorf("%s: mode %o, want %o", p, e.Mode.Perm(), f.Mode)
				}
				r, _, err := v.Open(p)
				if err != nil {
					t.Fatalf("open %s: %v", p, err)
				}
				if got := digest(t, r); got != f.SHA256() {
					t.Errorf("%s: sha256 %s, want %s", p, got, f.SHA256())
				}
			}
		})
	}
}

func TestSymlinksAreReportedNeverFollowed(t *testing.T) {
	v := openView(t)
	for _, vol := range []string{"/vda/part2", "/vdb/part1"} {
		p := path.Join(vol, testfsimage.Link)
		e, err := v.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != diskview.TypeSymlink {
			t.Fatalf("%s: %s, want a symlink", p, e.Type)
		}
		if vol == "/vda/part2" && e.Target != testfsimage.LinkTarget {
			t.Errorf("%s: target %q, want %q", p, e.Target, testfsimage.LinkTarget)
		}
		if _, _, err := v.Open(p); !errors.Is(err, diskview.ErrSymlink) {
			t.Errorf("open %s: %v, want ErrSymlink", p, err)
		}
	}
}

func TestBadPathsAreRefused(t *testing.T) {
	v := openView(t)
	for _, p := range []string{"/vda/part2/../../etc/shadow", "/vda/part2/etc/..", "/vda/./part2", "/vda/part2/a\x00b"} {
		if _, err := v.List(p); !errors.Is(err, diskview.ErrBadPath) {
			t.Errorf("list %q: %v, want ErrBadPath", p, err)
		}
	}
	for _, p := range []string{"/vdc", "/vda/part9", "/vda/part2/nope"} {
		if _, err := v.List(p); !errors.Is(err, diskview.ErrNotFound) {
			t.Errorf("list %q: %v, want ErrNotFound", p, err)
		}
	}
}

func TestDirectoryArchiveHoldsTheTree(t *testing.T) {
	v := openView(t)
	var buf bytes.Buffer
	if err := v.WriteTar("/vda/part2", &buf, diskview.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	links := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			got[h.Name] = digest(t, tr)
		case tar.TypeSymlink:
			links[h.Name] = h.Linkname
		}
	}
	for _, f := range testfsimage.Tree {
		if n := "part2/" + f.Path; got[n] != f.SHA256() {
			t.Errorf("%s: sha256 %q in the archive, want %s", n, got[n], f.SHA256())
		}
	}
	if l := links["part2/"+testfsimage.Link]; l != testfsimage.LinkTarget {
		t.Errorf("link: %q, want %q", l, testfsimage.LinkTarget)
	}
}
