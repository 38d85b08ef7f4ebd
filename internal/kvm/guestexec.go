package kvm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

// ExecResult is how a program run in the guest ended.
type ExecResult = hypervisor.ExecResult

// GuestExec runs path with args in the guest through its agent
// (guest-exec), waits until it ends or ctx does, and returns its exit and
// output.
func (d *Driver) GuestExec(ctx context.Context, domain, path string, args ...string) (ExecResult, error) {
	if args == nil {
		args = []string{}
	}
	raw, err := d.GuestCommand(ctx, domain, "guest-exec", map[string]any{"path": path, "arg": args, "capture-output": true}, 10)
	if err != nil {
		return ExecResult{}, fmt.Errorf("could not start %s in the guest: %w", path, err)
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(raw, &started); err != nil {
		return ExecResult{}, fmt.Errorf("guest-exec gave no pid: %w", err)
	}
	for {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int32  `json:"exitcode"`
			Signal   int32  `json:"signal"`
			Out      string `json:"out-data"`
			Err      string `json:"err-data"`
		}
		raw, err := d.GuestCommand(ctx, domain, "guest-exec-status", map[string]any{"pid": started.PID}, 5)
		if err == nil && json.Unmarshal(raw, &st) == nil && st.Exited {
			out, _ := base64.StdEncoding.DecodeString(st.Out)
			errOut, _ := base64.StdEncoding.DecodeString(st.Err)
			return ExecResult{ExitCode: st.ExitCode, Signal: st.Signal, Stdout: out, Stderr: errOut}, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, fmt.Errorf("%s did not finish in the guest: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
