package diskview

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
)

// Disk is one raw disk of a recovery point.
type Disk struct {
	Name string
	R    io.ReaderAt
	Size int64
}

// View is a recovery point's disks as one tree: /DISK lists the disk's
// volumes, /DISK/VOLUME/… is that volume's filesystem.
type View struct {
	disks []Disk
	vols  map[string][]Volume
	fss   map[string]filesystem
}

// New returns a view of disks (names as the recovery point's manifest
// gives them: plain names).
func New(disks []Disk) *View {
	return &View{disks: disks, vols: map[string][]Volume{}, fss: map[string]filesystem{}}
}

func (v *View) disk(name string) (Disk, bool) {
	for _, d := range v.disks {
		if d.Name == name {
			return d, true
		}
	}
	return Disk{}, false
}

func (v *View) volumes(d Disk) ([]Volume, error) {
	if vs, ok := v.vols[d.Name]; ok {
		return vs, nil
	}
	vs, err := Volumes(d.R, d.Size)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.Name, err)
	}
	v.vols[d.Name] = vs
	return vs, nil
}

// resolve finds the filesystem of p's volume and the rest of p.
func (v *View) resolve(p []string) (filesystem, []string, error) {
	d, ok := v.disk(p[0])
	if !ok {
		return nil, nil, fmt.Errorf("/%s: %w (the disks are %s)", p[0], ErrNotFound, v.diskNames())
	}
	vs, err := v.volumes(d)
	if err != nil {
		return nil, nil, err
	}
	key := d.Name + "/" + p[1]
	if f, ok := v.fss[key]; ok {
		return f, p[2:], nil
	}
	for _, vol := range vs {
		if vol.Name != p[1] {
			continue
		}
		if vol.FS == "" {
			return nil, nil, fmt.Errorf("/%s: %w: %s", key, ErrDamaged, vol.Problem)
		}
		f, err := openFS(d.R, vol)
		if err != nil {
			return nil, nil, fmt.Errorf("/%s (%s): %w", key, vol.FS, err)
		}
		v.fss[key] = f
		return f, p[2:], nil
	}
	return nil, nil, fmt.Errorf("/%s: %w", key, ErrNotFound)
}

func (v *View) diskNames() string {
	var s []string
	for _, d := range v.disks {
		s = append(s, d.Name)
	}
	return fmt.Sprint(s)
}

// List lists a directory: the disks at "/", a disk's volumes, or a
// directory of a volume's filesystem, sorted by name.
func (v *View) List(p string) ([]Entry, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return nil, err
	}
	var out []Entry
	switch len(parts) {
	case 0:
		for _, d := range v.disks {
			out = append(out, Entry{Name: d.Name, Type: TypeDir, Size: d.Size, Mode: 0o555})
		}
	case 1:
		d, ok := v.disk(parts[0])
		if !ok {
			return nil, fmt.Errorf("/%s: %w (the disks are %s)", parts[0], ErrNotFound, v.diskNames())
		}
		vs, err := v.volumes(d)
		if err != nil {
			return nil, err
		}
		for _, vol := range vs {
			out = append(out, Entry{Name: vol.Name, Type: TypeDir, Size: vol.Size, Mode: 0o555, FS: vol.FS, Unsafe: vol.Problem})
		}
	default:
		f, rest, err := v.resolve(parts)
		if err != nil {
			return nil, err
		}
		es, err := f.list(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", "/"+path.Join(parts...), err)
		}
		for _, e := range es {
			out = append(out, checked(e))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Stat describes one path.
func (v *View) Stat(p string) (Entry, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return Entry{}, err
	}
	if len(parts) == 0 {
		return Entry{Name: "/", Type: TypeDir, Mode: 0o555}, nil
	}
	if len(parts) > 2 {
		// A volume's path: list its parent (the parsers' own stat follows
		// links or misses types).
		f, rest, err := v.resolve(parts)
		if err != nil {
			return Entry{}, err
		}
		es, err := f.list(rest[:len(rest)-1])
		if err != nil {
			return Entry{}, fmt.Errorf("%s: %w", "/"+path.Join(parts[:len(parts)-1]...), err)
		}
		for _, e := range es {
			if e.Name == rest[len(rest)-1] {
				return checked(e), nil
			}
		}
		return Entry{}, fmt.Errorf("%s: %w", "/"+path.Join(parts...), ErrNotFound)
	}
	es, err := v.List(path.Dir("/" + path.Join(parts...)))
	if err != nil {
		return Entry{}, err
	}
	for _, e := range es {
		if e.Name == parts[len(parts)-1] {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%s: %w", "/"+path.Join(parts...), ErrNotFound)
}

// Open reads a regular file: exactly its size, or an error.
func (v *View) Open(p string) (io.Reader, Entry, error) {
	e, err := v.Stat(p)
	if err != nil {
		return nil, Entry{}, err
	}
	switch e.Type {
	case TypeDir:
		return nil, e, fmt.Errorf("%s: %w (download it as an archive)", p, ErrIsDir)
	case TypeSymlink:
		return nil, e, fmt.Errorf("%s: %w (it points to %q)", p, ErrSymlink, e.Target)
	case TypeOther:
		return nil, e, fmt.Errorf("%s: %w: not a regular file", p, ErrNotFound)
	}
	parts, _ := SplitPath(p)
	f, rest, err := v.resolve(parts)
	if err != nil {
		return nil, e, err
	}
	r, err := f.open(rest)
	if err != nil {
		return nil, e, fmt.Errorf("%s: %w", p, err)
	}
	return &exact{r: r, left: e.Size, path: p}, e, nil
}

// exact reads exactly a file's size: a parser that ends early is an
// error, not a short file.
type exact struct {
	r    io.Reader
	left int64
	path string
}

func (x *exact) Read(p []byte) (int, error) {
	if x.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > x.left {
		p = p[:x.left]
	}
	n, err := x.r.Read(p)
	x.left -= int64(n)
	if errors.Is(err, io.EOF) {
		err = nil
		if n == 0 {
			return 0, fmt.Errorf("%s: %w: the file ends %d bytes before its size", x.path, ErrDamaged, x.left)
		}
	}
	return n, err
}
