package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
)

// guestFacts asks the guest agent what it knows: OS, host name,
// filesystems, network interfaces. Each question is best effort.
func guestFacts(ctx context.Context, obs hypervisor.Observer, id string) *restorev1.GuestFacts {
	f := &restorev1.GuestFacts{}
	ask := func(cmd string, out any) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if raw, err := obs.GuestCommand(cctx, id, cmd, nil); err == nil {
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
	res, err := vf.p.obs.GuestExec(actx, vf.id, c.Path, c.Args...)
	if err != nil {
		if actx.Err() != nil {
			vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s did not finish within %s", c.Path, timeout)
			return
		}
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%v", err)
		return
	}
	out := string(res.Stdout) + string(res.Stderr)
	excerpt := printable(strings.TrimSpace(out), 300)
	switch {
	case res.Signal != 0:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s was killed by signal %d; output %q", c.Path, res.Signal, excerpt)
	case res.ExitCode != c.ExpectedExitCode:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s exited %d, expected %d; output %q", c.Path, res.ExitCode, c.ExpectedExitCode, excerpt)
	case c.OutputRegex != "" && !matches(c.OutputRegex, out):
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_FAILED, start, "%s exited %d but its output %q does not match %q", c.Path, res.ExitCode, excerpt, c.OutputRegex)
	default:
		vf.add(name, restorev1.CheckResult_CHECK_RESULT_PASSED, start, "%s exited %d; output %q", c.Path, res.ExitCode, excerpt)
	}
}

// matches reports whether re (validated by the server) matches s; a bad
// regex matches nothing.
func matches(re, s string) bool {
	r, err := regexp.Compile(re)
	return err == nil && r.MatchString(s)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
