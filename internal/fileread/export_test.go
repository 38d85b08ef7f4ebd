//go:build linux

package fileread

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
)

// ProbeArg makes the test binary a probe: a child confined as a reader is
// (Runner.command, confineSelf), which then says what it can still do.
const ProbeArg = "__fileread-probe"

// ProbeCommand is the probe's command line, confined as a child's.
func (r Runner) ProbeCommand(ctx context.Context, what string) *exec.Cmd {
	cmd := r.command(ctx, ProbeArg)
	cmd.Args = append(cmd.Args, what)
	return cmd
}

// Probe is what a confined child could do.
type Probe struct {
	UID, GID   int
	Groups     int
	SeesHost   bool   // /etc/passwd is visible
	WriteError string // writing a file in its root and in /tmp
	DialError  string // dialling the address it was given
}

// ProbeMain is the probe: "facts ADDR" reports a Probe; "alloc" asks for
// 3 GiB, past MemoryLimit.
func ProbeMain() int {
	root, what := os.Args[2], os.Args[3]
	if err := confineSelf(root); err != nil {
		return fail(&Failure{Kind: KindInternal, Message: err.Error()})
	}
	switch what {
	case "alloc":
		b := make([]byte, 3<<30)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return int(b[len(b)-4096]) - 1
	default:
		p := Probe{UID: os.Getuid(), GID: os.Getgid()}
		gs, _ := os.Getgroups()
		p.Groups = len(gs)
		_, err := os.Stat("/etc/passwd")
		p.SeesHost = err == nil
		werr := os.WriteFile("/probe", []byte("x"), 0o644)
		if werr == nil {
			werr = os.WriteFile(filepath.Join(os.TempDir(), "fileread-probe"), []byte("x"), 0o644)
		}
		if werr != nil {
			p.WriteError = werr.Error()
		}
		if c, err := net.Dial("tcp", what); err != nil {
			p.DialError = err.Error()
		} else {
			c.Close()
		}
		_ = json.NewEncoder(os.Stdout).Encode(p)
		return 0
	}
}
