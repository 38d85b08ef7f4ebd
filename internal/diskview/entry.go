package diskview

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is what a directory entry is.
type Type int

// The entry types.
const (
	TypeOther Type = iota
	TypeFile
	TypeDir
	TypeSymlink
)

var typeNames = [...]string{TypeOther: "other", TypeFile: "file", TypeDir: "dir", TypeSymlink: "symlink"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Entry is one directory entry.
type Entry struct {
	// Name as stored; when Unsafe says why it cannot be a path component,
	// Name is quoted (strconv.Quote) so it prints safely.
	Name    string
	Type    Type
	Size    int64
	Mode    fs.FileMode // permission bits (and setuid, setgid, sticky)
	ModTime time.Time
	// Target is a symbolic link's target, as stored (never followed).
	Target string
	// Unsafe says why the name is not used as a path (and the entry is
	// left out of archives): empty when it is a plain name.
	Unsafe string
	// FS is a volume's filesystem (ext4, xfs, ntfs, fat), for the volumes
	// a disk lists.
	FS string
}

// Errors a reader returns, wrapped with the path.
var (
	ErrNotFound = errors.New("no such file or directory")
	ErrNotDir   = errors.New("not a directory")
	ErrIsDir    = errors.New("is a directory")
	ErrSymlink  = errors.New("is a symbolic link, which file restore never follows")
	ErrBadPath  = errors.New("not a path inside the recovery point")
	// ErrDamaged is a filesystem (or partition table) that could not be
	// read as what it claims to be.
	ErrDamaged = errors.New("the filesystem is damaged or not one this reader understands")
	// ErrTooBig is a walk that passed its bounds (depth, entries).
	ErrTooBig = errors.New("too many entries or too deep")
)

// maxName is the longest name any supported filesystem stores (bytes).
const maxName = 255

// unsafeName says why a stored name cannot be a path component ("" when
// it can).
func unsafeName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name == "." || name == "..":
		return "the name " + name
	case strings.ContainsRune(name, '/'):
		return `name contains "/"`
	case strings.ContainsRune(name, 0):
		return "name contains NUL"
	case len(name) > maxName:
		return fmt.Sprintf("name of %d bytes (at most %d)", len(name), maxName)
	case !utf8.ValidString(name):
		return "name is not UTF-8"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "name contains a control character"
		}
	}
	return ""
}

// checked returns e with Unsafe set, and Name quoted when unsafe.
func checked(e Entry) Entry {
	if why := unsafeName(e.Name); why != "" {
		e.Unsafe = why
		e.Name = fmt.Sprintf("%q", e.Name)
	}
	return e
}

// SplitPath turns an API path ("/vda/part1/etc") into its components,
// refusing ".." and empty or unsafe components; "/" and "" are the top.
func SplitPath(p string) ([]string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if why := unsafeName(c); why != "" {
			return nil, fmt.Errorf("%w: %q (%s)", ErrBadPath, p, why)
		}
	}
	return parts, nil
}
