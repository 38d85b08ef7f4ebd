package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
)

// guestFacts asks the guest agent what it knows: OS, host name,
// filesystems, network interfaces. Each question is best effort.
func guestFacts(ctx context.Context, drv *kvm.Driver, name string) *restorev1.GuestFacts {
	f := &restorev1.GuestFacts{}
	ask := func(cmd string, out any) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if raw, err := drv.GuestCommand(cctx, name, cmd, nil, 5); err == nil {
			_ = json.Unmarshal(raw, out)
		}
	}
	var info map[string]any
	ask("guest-get-osinfo", &info)
	str := func(k string) string { s, _ := info[k].(string); return s }
	f.OsName = printable(firstNonEmpty(str("name"), str("pretty-name")), 200)
	f.OsVersion = printable(firstNonEmpty(str("version"), str("version-id")), 200)
	f.KernelRelease = printable(str("kernel-release"), 200)
	var host struct {
		HostName string `json:"host-name"`
	}
	ask("guest-get-host-name", &host)
	f.Hostname = printable(host.HostName, 253)
	var fss []struct {
		Name       string `json:"name"`
		Mountpoint string `json:"mountpoint"`
		Type       string `json:"type"`
	}
	ask("guest-get-fsinfo", &fss)
	for i, fs := range fss {
		if i == 64 {
			break
		}
		f.Filesystems = append(f.Filesystems, &restorev1.GuestFilesystem{Mountpoint: printable(fs.Mountpoint, 500), Type: printable(fs.Type, 64), Name: printable(fs.Name, 200)})
	}
	sort.Slice(f.Filesystems, func(i, j int) bool { return f.Filesystems[i].Mountpoint < f.Filesystems[j].Mountpoint })
	var ifs []struct {
		Name      string `json:"name"`
		HWAddr    string `json:"hardware-address"`
		Addresses []struct {
			IP     string `json:"ip-address"`
			Prefix int    `json:"prefix"`
		} `json:"ip-addresses"`
	}
	ask("guest-network-get-interfaces", &ifs)
	for i, in := range ifs {
		if i == 32 {
			break
		}
		gi := &restorev1.GuestInterface{Name: printable(in.Name, 64), HardwareAddress: printable(in.HWAddr, 64)}
		for _, a := range in.Addresses {
			gi.Addresses = append(gi.Addresses, printable(fmt.Sprintf("%s/%d", a.IP, a.Prefix), 64))
		}
		f.Interfaces = append(f.Interfaces, gi)
	}
	return f
}

// checkApp runs an application check inside the guest with guest-exec and
// judges its exit code and output.
func (vf *verifier) checkApp(ctx context.Context, gaUp bool, c *restorev1.AppCheck) {
	start := time.Now()
	name := "app:" + c.Name
	if !gaUp {
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "no guest agent to run %s", c.Path)
		return
	}
	timeout := time.Duration(c.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := vf.a.drv.GuestCommand(actx, vf.name, "guest-exec", map[string]any{
		"path": c.Path, "arg": nonNil(c.Args), "capture-output": true,
	}, 10)
	if err != nil {
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "could not start %s in the guest: %v", c.Path, err)
		return
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(raw, &started); err != nil {
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "guest-exec gave no pid: %v", err)
		return
	}
	for {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int32  `json:"exitcode"`
			Signal   int32  `json:"signal"`
			Out      string `json:"out-data"`
			Err      string `json:"err-data"`
		}
		raw, err := vf.a.drv.GuestCommand(actx, vf.name, "guest-exec-status", map[string]any{"pid": started.PID}, 5)
		if err == nil && json.Unmarshal(raw, &st) == nil && st.Exited {
			out := decodeB64(st.Out) + decodeB64(st.Err)
			excerpt := printable(strings.TrimSpace(out), 300)
			switch {
			case st.Signal != 0:
				vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s was killed by signal %d; output %q", c.Path, st.Signal, excerpt)
			case st.ExitCode != c.ExpectedExitCode:
				vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s exited %d, expected %d; output %q", c.Path, st.ExitCode, c.ExpectedExitCode, excerpt)
			case c.OutputRegex != "" && !matches(c.OutputRegex, out):
				vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s exited %d but its output %q does not match %q", c.Path, st.ExitCode, excerpt, c.OutputRegex)
			default:
				vf.add(name, restorev1.CheckResult_CHECK_RESULT_PASSED, start, "%s exited %d; output %q", c.Path, st.ExitCode, excerpt)
			}
			return
		}
		select {
		case <-actx.Done():
			vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s did not finish within %s", c.Path, timeout)
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// matches reports whether re (validated by the server) matches s; a bad
// regex matches nothing.
func matches(re, s string) bool {
	r, err := regexp.Compile(re)
	return err == nil && r.MatchString(s)
}

func decodeB64(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
