package diskview

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
)

// Limits bound a directory walk: a filesystem that claims more, or nests
// deeper (a directory that contains itself), is refused before the first
// byte of the archive is written.
type Limits struct {
	MaxDepth   int
	MaxEntries int
}

// DefaultLimits are the walk's bounds when the caller gives none.
var DefaultLimits = Limits{MaxDepth: 64, MaxEntries: 200_000}

// planned is one entry of a walk: its archive name (built only of checked
// names) and what it is.
type planned struct {
	src  string // the view's path
	name string // the archive's path
	e    Entry
}

// plan walks the directory p, depth first, within lim; entries whose names
// cannot be paths (and anything but files, directories and links) are
// skipped with the reason.
func (v *View) plan(p string, lim Limits) (out []planned, skipped []string, err error) {
	top, err := v.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if top.Type != TypeDir {
		return nil, nil, fmt.Errorf("%s: %w: archives are of directories (get a file as it is)", p, ErrNotDir)
	}
	root := path.Base("/" + strings.Trim(p, "/"))
	if root == "/" {
		root = "recovery-point"
	}
	var walk func(src, name string, depth int) error
	walk = func(src, name string, depth int) error {
		if depth > lim.MaxDepth {
			return fmt.Errorf("%s: %w: directories nest deeper than %d below it (a directory that contains itself?)", p, ErrTooBig, lim.MaxDepth)
		}
		es, err := v.List(src)
		if err != nil {
			return err
		}
		for _, e := range es {
			s, n := path.Join(src, e.Name), path.Join(name, e.Name)
			switch {
			case e.Unsafe != "":
				skipped = append(skipped, fmt.Sprintf("%s/%s: %s", src, e.Name, e.Unsafe))
				continue
			case e.Type == TypeOther:
				skipped = append(skipped, fmt.Sprintf("%s: not a file, directory or link", s))
				continue
			}
			if len(out) >= lim.MaxEntries {
				return fmt.Errorf("%s: %w: more than %d entries; archive a smaller directory", p, ErrTooBig, lim.MaxEntries)
			}
			out = append(out, planned{src: s, name: n, e: e})
			if e.Type == TypeDir {
				if err := walk(s, n, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	out = append(out, planned{src: "/" + strings.Trim(p, "/"), name: root, e: top})
	if err := walk(out[0].src, root, 1); err != nil {
		return nil, nil, err
	}
	return out, skipped, nil
}

// WriteTar writes the directory p as a tar stream (directories, files with
// their modes and times, symbolic links as links). The walk is done first,
// so a directory that cannot be walked fails before any byte is written.
// What was skipped is listed in a last entry, RESTORE-SKIPPED.txt.
func (v *View) WriteTar(p string, w io.Writer, lim Limits) error {
	items, skipped, err := v.plan(p, lim)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, it := range items {
		h := &tar.Header{Name: it.name, Mode: int64(it.e.Mode.Perm()), ModTime: it.e.ModTime, Format: tar.FormatPAX}
		switch it.e.Type {
		case TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, it.name+"/"
		case TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, it.e.Target
		default:
			h.Typeflag, h.Size = tar.TypeReg, it.e.Size
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		r, _, err := v.Open(it.src)
		if err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return err
		}
	}
	if len(skipped) > 0 {
		body := "Restored left these out of the archive:\n" + strings.Join(skipped, "\n") + "\n"
		if err := tw.WriteHeader(&tar.Header{Name: path.Join(items[0].name, "RESTORE-SKIPPED.txt"), Mode: 0o644, Size: int64(len(body)), Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
	}
	return tw.Close()
}
