//go:build linux

package fileread

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// The child's limits.
const (
	// MemoryLimit is its address space: enough for the Go runtime, the
	// read cache and a parser's structures; a filesystem that makes a
	// parser ask for more (a directory claiming 2^40 entries) stops it.
	MemoryLimit = 2 << 30
	// CPULimitSeconds bounds a parser that loops.
	CPULimitSeconds = 600
)

// Runner starts children.
type Runner struct {
	// Exe is the binary to run with ChildArg (the agent's own:
	// os.Executable()).
	Exe string
	// Root is an empty directory the child makes its root (chroot) before
	// it reads anything, so no host file is even visible to it; "" keeps
	// the host's (a child not started as root cannot chroot).
	Root string
}

// command is a child's command line and confinement: its namespaces (as
// root), a minimal environment, its parent's death its own.
func (r Runner) command(ctx context.Context, arg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.Exe, arg, r.Root)
	cmd.Env = []string{"GOMAXPROCS=2", "GOTRACEBACK=none"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	}
	return cmd
}

// Run asks a child req, reading each disk over the matching connected
// socket in socks (closed by the caller), and writes its answer to out.
// A failure is a *Failure. The child checks what it can (the path, the
// walk) before its first byte, so a caller that has seen no byte yet can
// still answer with the failure alone.
func (r Runner) Run(ctx context.Context, req Request, socks []*os.File, out io.Writer) error {
	if err := req.Validate(); err != nil {
		return &Failure{Kind: KindBadPath, Message: err.Error()}
	}
	if len(socks) != len(req.Disks) {
		return &Failure{Kind: KindInternal, Message: fmt.Sprintf("%d sockets for %d disks", len(socks), len(req.Disks))}
	}
	body, _ := json.Marshal(req)
	cmd := r.command(ctx, ChildArg)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, left: 64 << 10}
	cmd.ExtraFiles = socks
	err := cmd.Run()
	if err == nil {
		return nil
	}
	var f Failure
	if json.Unmarshal(lastLine(stderr.Bytes()), &f) == nil && f.Kind != "" {
		return &f
	}
	return limitFailure(ctx, err, stderr.String())
}

// limitFailure explains a child that did not fail in its own words: it
// was stopped by a limit, or crashed.
func limitFailure(ctx context.Context, err error, stderr string) error {
	var ee *exec.ExitError
	msg := strings.TrimSpace(stderr)
	switch {
	case ctx.Err() != nil:
		return &Failure{Kind: KindLimit, Message: "the file reader took too long and was stopped: " + context.Cause(ctx).Error()}
	case strings.Contains(msg, "out of memory"), strings.Contains(msg, "cannot allocate memory"):
		return &Failure{Kind: KindLimit, Message: fmt.Sprintf("the filesystem made its reader ask for more than its %d MiB of memory (it is damaged or hostile): nothing was read", MemoryLimit>>20)}
	case errors.As(err, &ee) && ee.ProcessState != nil:
		if ws, ok := ee.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &Failure{Kind: KindLimit, Message: fmt.Sprintf("the file reader was stopped by %s (a limit: CPU %d s, memory %d MiB)", ws.Signal(), CPULimitSeconds, MemoryLimit>>20)}
		}
	}
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return &Failure{Kind: KindInternal, Message: fmt.Sprintf("the file reader failed: %v: %s", err, msg)}
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// limitedBuffer keeps at most left bytes of what it is written.
type limitedBuffer struct {
	b    *bytes.Buffer
	left int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > l.left {
		p = p[:l.left]
	}
	l.b.Write(p)
	l.left -= len(p)
	return n, nil
}

// EmptyRoot makes (or checks) dir as a child's root: an empty directory
// only root may write.
func EmptyRoot(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o555); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(ents) > 0 {
		return "", fmt.Errorf("%s is the file reader's empty root, but it holds %d entries: remove them", dir, len(ents))
	}
	return dir, nil
}
