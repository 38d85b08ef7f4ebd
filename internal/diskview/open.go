package diskview

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/masahiro331/go-ext4-filesystem/ext4"
	"github.com/masahiro331/go-xfs-filesystem/xfs"
	ntfs "www.velocidex.com/golang/go-ntfs/parser"
)

// openFS reads a volume's filesystem.
func openFS(r io.ReaderAt, v Volume) (fsys filesystem, err error) {
	defer func() {
		// A parser that panics on what it read (an index out of range, a
		// nil it did not expect) met a damaged filesystem.
		if p := recover(); p != nil {
			fsys, err = nil, fmt.Errorf("%w: the %s parser stopped: %v", ErrDamaged, v.FS, p)
		}
	}()
	st := &readerStorage{r: r, size: v.Start + v.Size}
	switch v.FS {
	case "ext4":
		f, err := ext4.NewFS(*io.NewSectionReader(r, v.Start, v.Size), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: ext4: %v", ErrDamaged, err)
		}
		return guarded{ioFS{readDir: f.ReadDir, openFile: func(p string) (io.Reader, error) { return f.Open(p) }, readLink: f.ReadLink}}, nil
	case "fat":
		return openFAT(st, v)
	case "xfs":
		f, err := xfs.NewFS(*io.NewSectionReader(r, v.Start, v.Size), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: xfs: %v", ErrDamaged, err)
		}
		return guarded{ioFS{readDir: f.ReadDir, openFile: func(p string) (io.Reader, error) { return f.Open(p) }}}, nil
	case "ntfs":
		pr, err := ntfs.NewPagedReader(io.NewSectionReader(r, v.Start, v.Size), 4096, 4096)
		if err != nil {
			return nil, fmt.Errorf("%w: ntfs: %v", ErrDamaged, err)
		}
		ctx, err := ntfs.GetNTFSContext(pr, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: ntfs: %v", ErrDamaged, err)
		}
		return guarded{ntfsFS{ctx: ctx}}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrDamaged, v.Problem)
}

// openFAT reads FAT32, FAT16 or FAT12, as the boot sector says.
func openFAT(st *readerStorage, v Volume) (filesystem, error) {
	head := make([]byte, 90)
	if _, err := st.ReadAt(head, v.Start); err != nil {
		return nil, fmt.Errorf("%w: fat: %v", ErrDamaged, err)
	}
	type fatFS interface {
		ReadDir(string) ([]fs.DirEntry, error)
		Open(string) (fs.File, error)
	}
	var f fatFS
	var err error
	switch {
	case string(head[82:87]) == "FAT32":
		f, err = fat32.Read(st, v.Size, v.Start, sector)
	case string(head[54:59]) == "FAT16":
		f, err = fat16.Read(st, v.Size, v.Start, sector)
	default:
		f, err = fat12.Read(st, v.Size, v.Start, sector)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fat: %v", ErrDamaged, err)
	}
	return guarded{ioFS{readDir: f.ReadDir, openFile: func(p string) (io.Reader, error) { return f.Open(p) }}}, nil
}

// guarded turns a parser's panic into ErrDamaged.
type guarded struct{ fs filesystem }

func (g guarded) list(dir []string) (out []Entry, err error) {
	defer recoverDamaged(&err)
	return g.fs.list(dir)
}

func (g guarded) open(p []string) (r io.Reader, err error) {
	defer recoverDamaged(&err)
	r, err = g.fs.open(p)
	if err != nil {
		return nil, err
	}
	return guardedReader{r}, nil
}

type guardedReader struct{ r io.Reader }

func (g guardedReader) Read(p []byte) (n int, err error) {
	defer recoverDamaged(&err)
	return g.r.Read(p)
}

func recoverDamaged(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: the parser stopped: %v", ErrDamaged, p)
	}
}

// ntfsFS reads NTFS with go-ntfs.
type ntfsFS struct{ ctx *ntfs.NTFSContext }

func (n ntfsFS) entry(p []string) (*ntfs.MFT_ENTRY, error) {
	root, err := n.ctx.GetMFT(5)
	if err != nil {
		return nil, fmt.Errorf("%w: ntfs root: %v", ErrDamaged, err)
	}
	if len(p) == 0 {
		return root, nil
	}
	e, err := root.Open(n.ctx, "/"+path.Join(p...))
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "not found") {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("%w: ntfs: %v", ErrDamaged, err)
	}
	return e, nil
}

func (n ntfsFS) list(dir []string) ([]Entry, error) {
	e, err := n.entry(dir)
	if err != nil {
		return nil, err
	}
	if !e.IsDir(n.ctx) {
		return nil, ErrNotDir
	}
	var out []Entry
	seen := map[string]bool{}
	for _, fi := range ntfs.ListDir(n.ctx, e) {
		if fi.IsSlack || fi.Name == "." || fi.Name == "" || seen[fi.Name] {
			continue // deleted entries in index slack; DOS names repeat
		}
		seen[fi.Name] = true
		x := Entry{Name: fi.Name, Type: TypeFile, Size: fi.Size, Mode: 0o644, ModTime: fi.Mtime}
		if fi.IsDir {
			x.Type, x.Size, x.Mode = TypeDir, 0, 0o755
		}
		out = append(out, x)
	}
	return out, nil
}

func (n ntfsFS) open(p []string) (io.Reader, error) {
	e, err := n.entry(p)
	if err != nil {
		return nil, err
	}
	rng, err := ntfs.OpenStream(n.ctx, e, ntfs.ATTR_TYPE_DATA, ntfs.WILDCARD_STREAM_ID, ntfs.WILDCARD_STREAM_NAME)
	if err != nil {
		return nil, fmt.Errorf("%w: ntfs data: %v", ErrDamaged, err)
	}
	return io.NewSectionReader(rng, 0, ntfs.RangeSize(rng)), nil
}
