//go:build linux

package fileread

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/restored/restored/internal/diskview"
	"github.com/restored/restored/internal/nbd"
	"golang.org/x/sys/unix"
)

// ChildArg is the first argument that makes the agent's binary a reader
// child (the agent's main calls Main then).
const ChildArg = "__restored-file-reader"

// Main is the child: it confines itself further (no new privileges,
// limits), reads its Request, answers and returns the exit status.
func Main() int {
	root := ""
	if len(os.Args) > 2 {
		root = os.Args[2]
	}
	if err := confineSelf(root); err != nil {
		return fail(&Failure{Kind: KindInternal, Message: "confining the file reader: " + err.Error()})
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 1<<20)).Decode(&req); err != nil {
		return fail(&Failure{Kind: KindInternal, Message: "reading the request: " + err.Error()})
	}
	if err := req.Validate(); err != nil {
		return fail(&Failure{Kind: KindBadPath, Message: err.Error()})
	}
	var disks []diskview.Disk
	for i, d := range req.Disks {
		f := os.NewFile(uintptr(3+i), "nbd-"+d.Name)
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return fail(&Failure{Kind: KindInternal, Message: fmt.Sprintf("disk %s: %v", d.Name, err)})
		}
		c, err := nbd.Client(nc, nbd.Options{Export: d.Export})
		if err != nil {
			return fail(&Failure{Kind: KindInternal, Message: fmt.Sprintf("disk %s: %v", d.Name, err)})
		}
		disks = append(disks, diskview.Disk{Name: d.Name, R: newCache(c, c.Size()), Size: c.Size()})
	}
	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	if err := answer(diskview.New(disks), req, out); err != nil {
		return fail(&Failure{Kind: kindOf(err), Message: err.Error()})
	}
	if err := out.Flush(); err != nil {
		return fail(&Failure{Kind: KindInternal, Message: err.Error()})
	}
	return 0
}

func answer(v *diskview.View, req Request, out io.Writer) error {
	switch req.Op {
	case OpList:
		es, err := v.List(req.Path)
		if err != nil {
			return err
		}
		page := Listing{Total: len(es)}
		lo := min(req.Offset, len(es))
		hi := len(es)
		if req.Limit > 0 {
			hi = min(hi, lo+req.Limit)
		}
		page.Entries = es[lo:hi]
		return json.NewEncoder(out).Encode(page)
	case OpStat:
		e, err := v.Stat(req.Path)
		if err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(Listing{Entries: []diskview.Entry{e}, Total: 1})
	case OpGet:
		r, e, err := v.Open(req.Path)
		if err != nil {
			return err
		}
		if int64(req.Offset) > e.Size {
			return fmt.Errorf("%s: offset %d is past its %d bytes", req.Path, req.Offset, e.Size)
		}
		if _, err := io.CopyN(io.Discard, r, int64(req.Offset)); err != nil {
			return err
		}
		if req.Limit > 0 {
			r = io.LimitReader(r, int64(req.Limit))
		}
		_, err = io.Copy(out, r)
		return err
	case OpTar:
		return v.WriteTar(req.Path, out, diskview.DefaultLimits)
	}
	return errors.New("unknown operation")
}

func fail(f *Failure) int {
	_ = json.NewEncoder(os.Stderr).Encode(f)
	return 1
}

// nobody is the user the child runs as (when started as root).
const nobody = 65534

// confineSelf makes the empty root its root, drops to nobody (its binary
// may sit where nobody could not exec it, so it starts as the agent and
// drops here), sets no new privileges and the limits: all before a byte of
// the backup is read.
func confineSelf(root string) error {
	if os.Geteuid() == 0 {
		if root != "" {
			if err := syscall.Chroot(root); err != nil {
				return fmt.Errorf("chroot %s: %w", root, err)
			}
			if err := os.Chdir("/"); err != nil {
				return err
			}
		}
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(nobody); err != nil {
			return fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(nobody); err != nil {
			return fmt.Errorf("setuid: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	for _, l := range []struct {
		res int
		max uint64
	}{
		{unix.RLIMIT_AS, MemoryLimit},
		{unix.RLIMIT_CPU, CPULimitSeconds},
		{unix.RLIMIT_FSIZE, 0}, // no file is written
		{unix.RLIMIT_CORE, 0},
		{unix.RLIMIT_NOFILE, 64},
	} {
		if err := unix.Setrlimit(l.res, &unix.Rlimit{Cur: l.max, Max: l.max}); err != nil {
			return fmt.Errorf("rlimit %d: %w", l.res, err)
		}
	}
	return nil
}
