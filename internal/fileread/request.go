package fileread

import (
	"errors"
	"fmt"
	"strings"

	"github.com/restored/restored/internal/diskview"
)

// Op is what the child is asked to do.
type Op string

// The operations.
const (
	OpList Op = "list" // a page of a directory's entries, as a Listing
	OpStat Op = "stat" // one path, as a Listing of one entry
	OpGet  Op = "get"  // a regular file's bytes
	OpTar  Op = "tar"  // a directory as a tar stream
)

// DiskRef is a disk the child reads: the NBD export on the socket it is
// handed (file descriptor 3 + its index).
type DiskRef struct {
	Name   string `json:"name"`
	Export string `json:"export"`
}

// Request is one question to the child.
// Offset and Limit page a listing (entries) or a get (bytes; Limit 0: to
// the end).
type Request struct {
	Op     Op        `json:"op"`
	Path   string    `json:"path"`
	Offset int       `json:"offset,omitempty"`
	Limit  int       `json:"limit,omitempty"`
	Disks  []DiskRef `json:"disks"`
}

// Listing is the answer to list and stat.
type Listing struct {
	Entries []diskview.Entry `json:"entries"`
	// Total is how many entries the directory has.
	Total int `json:"total"`
}

// Kind is the class of a failure, so the API can give its status.
type Kind string

// The failure kinds.
const (
	KindNotFound Kind = "not_found"
	KindBadPath  Kind = "bad_path"
	KindNotDir   Kind = "not_dir"
	KindIsDir    Kind = "is_dir"
	KindSymlink  Kind = "symlink"
	KindDamaged  Kind = "damaged"
	KindTooBig   Kind = "too_big"
	// KindLimit is a child stopped by its limits (memory, CPU, time).
	KindLimit    Kind = "limit"
	KindInternal Kind = "internal"
)

// Failure is what the child says when it fails.
type Failure struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
}

func (f *Failure) Error() string { return f.Message }

// kindOf classifies a diskview error.
func kindOf(err error) Kind {
	for _, c := range []struct {
		err  error
		kind Kind
	}{
		{diskview.ErrBadPath, KindBadPath}, {diskview.ErrNotFound, KindNotFound}, {diskview.ErrNotDir, KindNotDir},
		{diskview.ErrIsDir, KindIsDir}, {diskview.ErrSymlink, KindSymlink}, {diskview.ErrTooBig, KindTooBig},
		{diskview.ErrDamaged, KindDamaged},
	} {
		if errors.Is(err, c.err) {
			return c.kind
		}
	}
	return KindInternal
}

// Check checks what a request asks (its operation, path and bounds),
// before any disk is served for it.
func (r Request) Check() error {
	switch r.Op {
	case OpList, OpStat, OpGet, OpTar:
	default:
		return fmt.Errorf("unknown operation %q", r.Op)
	}
	if r.Offset < 0 || r.Limit < 0 {
		return errors.New("offset and limit are never negative")
	}
	_, err := diskview.SplitPath(r.Path)
	return err
}

// Validate checks a whole request, its disks too, before a child is
// started for it.
func (r Request) Validate() error {
	if len(r.Disks) == 0 || len(r.Disks) > maxDisks {
		return fmt.Errorf("a request reads 1 to %d disks, not %d", maxDisks, len(r.Disks))
	}
	return r.Check()
}

// maxDisks bounds the sockets a child is handed.
const maxDisks = 16

// Wire is the failure as one line for a tunnel's close message:
// "KIND: message".
func (f *Failure) Wire() string { return string(f.Kind) + ": " + f.Message }

// FromWire reads a Wire line back (an unknown shape is internal).
func FromWire(s string) *Failure {
	k, msg, ok := strings.Cut(s, ": ")
	for _, known := range []Kind{KindNotFound, KindBadPath, KindNotDir, KindIsDir, KindSymlink, KindDamaged, KindTooBig, KindLimit, KindInternal} {
		if ok && Kind(k) == known {
			return &Failure{Kind: known, Message: msg}
		}
	}
	return &Failure{Kind: KindInternal, Message: s}
}
