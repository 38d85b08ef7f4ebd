package diskview

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// filesystem is one volume's filesystem, as a parser reads it. Paths are
// components already checked by SplitPath (nil: the root).
type filesystem interface {
	list(dir []string) ([]Entry, error)
	// open reads a regular file.
	open(p []string) (io.Reader, error)
}

// fromInfo makes an Entry of what io/fs says of a file.
func fromInfo(name string, fi fs.FileInfo) Entry {
	e := Entry{Name: name, Size: fi.Size(), Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), ModTime: fi.ModTime()}
	switch m := fi.Mode(); {
	case m.IsDir(), fi.IsDir(): // go-diskfs's FAT sets no ModeDir
		e.Type, e.Size = TypeDir, 0
	case m&fs.ModeSymlink != 0:
		e.Type = TypeSymlink
	case m.IsRegular():
		e.Type = TypeFile
	default:
		e.Type, e.Size = TypeOther, 0
	}
	return e
}

// ioFS adapts a parser that offers io/fs's ReadDir and Open (io/fs paths:
// relative, "." the root).
type ioFS struct {
	readDir  func(string) ([]fs.DirEntry, error)
	openFile func(string) (io.Reader, error)
	readLink func(string) (string, error) // nil: links' targets are not read
	// stat, when set, is asked for each entry's modes (a parser whose
	// directory entries carry none).
	stat func(string) (fs.FileInfo, error)
}

func (f ioFS) name(p []string) string {
	s := path.Join(p...)
	if s == "" {
		return "."
	}
	return s
}

func (f ioFS) list(dir []string) ([]Entry, error) {
	des, err := f.readDir(f.name(dir))
	if err != nil {
		return nil, parserError(err)
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		if n := de.Name(); n == "." || n == ".." {
			continue
		}
		fi, err := de.Info()
		if err == nil && f.stat != nil && unsafeName(de.Name()) == "" {
			fi, err = f.stat(f.name(append(dir[:len(dir):len(dir)], de.Name())))
		}
		if err != nil {
			return nil, parserError(err)
		}
		e := fromInfo(de.Name(), fi)
		if e.Type == TypeSymlink && f.readLink != nil && unsafeName(de.Name()) == "" {
			if t, err := f.readLink(f.name(append(dir[:len(dir):len(dir)], de.Name()))); err == nil {
				e.Target = t
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (f ioFS) open(p []string) (io.Reader, error) {
	r, err := f.openFile(f.name(p))
	if err != nil {
		return nil, parserError(err)
	}
	return r, nil
}

// parserError maps a parser's error to ours: not found stays not found,
// anything else is a damaged filesystem, with the parser's words.
func parserError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, os.ErrNotExist):
		return ErrNotFound
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDamaged):
		return err
	case strings.Contains(err.Error(), "not found"), strings.Contains(err.Error(), "does not exist"):
		return ErrNotFound // go-diskfs says so only in words
	}
	return fmt.Errorf("%w: %v", ErrDamaged, err)
}
