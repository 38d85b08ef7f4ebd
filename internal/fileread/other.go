//go:build !linux

package fileread

import (
	"context"
	"io"
	"os"
	"runtime"
)

// ChildArg is the reader child's first argument (Linux only).
const ChildArg = "__restored-file-reader"

// Runner starts children; file-level restore reads filesystems on Linux
// hosts only.
type Runner struct{ Exe, Root string }

// EmptyRoot is never needed here.
func EmptyRoot(dir string) (string, error) { return "", nil }

// Run refuses: the confinement is Linux's.
func (Runner) Run(context.Context, Request, []*os.File, io.Writer) error {
	return &Failure{Kind: KindInternal, Message: "file-level restore runs on Linux hosts, not " + runtime.GOOS}
}

// Main is never a child here.
func Main() int { return 1 }
