package hyperv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one PowerShell script and returns what it wrote to stdout.
// The real one is PowerShell; tests use a transcript of each command's
// documented output.
type Runner interface {
	Run(ctx context.Context, script string) ([]byte, error)
}

// PowerShell runs scripts with the host's Windows PowerShell (or pwsh),
// non-interactive, without a profile; it is killed when ctx ends.
type PowerShell struct {
	// Path is the executable (default powershell.exe).
	Path string
}

// Run implements Runner. A script that fails writes its error as JSON to
// stdout and exits 1: the output is returned with the exit error.
func (p PowerShell) Run(ctx context.Context, script string) ([]byte, error) {
	exe := p.Path
	if exe == "" {
		exe = "powershell.exe"
	}
	cmd := exec.CommandContext(ctx, exe, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", "-")
	cmd.Stdin = strings.NewReader(script)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("%s: %w: %s", exe, err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), err
}

// Error is a PowerShell error record, as the scripts report it.
type Error struct {
	Command string `json:"-"`
	Message string `json:"message"`
	// ID is the record's FullyQualifiedErrorId
	// ("InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM").
	ID       string `json:"id"`
	Category string `json:"category"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("hyper-v %s: %s (%s)", e.Command, e.Message, e.ID)
}

// ErrNotFound is a VM, checkpoint or file Hyper-V does not have.
var ErrNotFound = errors.New("not found on the Hyper-V host")

// Is makes an ObjectNotFound record ErrNotFound.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && (e.Category == "ObjectNotFound" || strings.HasPrefix(e.ID, "ObjectNotFound") ||
		strings.Contains(e.ID, "VMNotFound") || strings.Contains(e.ID, "NotFound,"))
}

// script is a command's PowerShell: its parameters arrive as base64 JSON
// (no value is ever spliced into the code, so no name can inject any),
// errors are caught and written as one JSON object, and the result is
// written as JSON. The first line names the command (transcripts key on
// it).
func script(name, body string, params any) (string, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`# restored:%s
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $p = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('%s')) | ConvertFrom-Json
  $r = & {
%s
  }
  [Console]::Out.Write((ConvertTo-Json -InputObject @{result = $r} -Depth 8 -Compress))
} catch {
  $e = @{message = $_.Exception.Message; id = $_.FullyQualifiedErrorId; category = [string]$_.CategoryInfo.Category}
  [Console]::Out.Write((ConvertTo-Json -InputObject @{error = $e} -Compress))
  exit 1
}
`, name, base64.StdEncoding.EncodeToString(b), body), nil
}

// CommandName is the command a script runs (its first line), for
// transcripts.
func CommandName(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimPrefix(first, "# restored:")
}

// Params decodes a script's parameters, for transcripts.
func Params(s string, into any) error {
	i := strings.Index(s, "FromBase64String('")
	if i < 0 {
		return errors.New("no parameters in the script")
	}
	rest := s[i+len("FromBase64String('"):]
	b64, _, _ := strings.Cut(rest, "'")
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// call runs a command and decodes its result into out (nil: ignored).
func call(ctx context.Context, r Runner, name, body string, params, out any) error {
	s, err := script(name, body, params)
	if err != nil {
		return err
	}
	raw, runErr := r.Run(ctx, s)
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(raw), &reply); err != nil {
		if runErr != nil {
			return fmt.Errorf("hyper-v %s: %w", name, runErr)
		}
		return fmt.Errorf("hyper-v %s: an answer that is not JSON: %q", name, clip(raw))
	}
	if reply.Error != nil {
		reply.Error.Command = name
		return reply.Error
	}
	if runErr != nil {
		return fmt.Errorf("hyper-v %s: %w", name, runErr)
	}
	if out == nil || len(reply.Result) == 0 || string(reply.Result) == "null" {
		return nil
	}
	if err := json.Unmarshal(reply.Result, out); err != nil {
		return fmt.Errorf("hyper-v %s: %w in %q", name, err, clip(reply.Result))
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
