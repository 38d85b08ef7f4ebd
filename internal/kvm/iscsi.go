//go:build linux

package kvm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

// iSCSI exports on KVM: each disk's overlay is given a raw view (a FUSE
// export of the same qemu-storage-daemon, a file in the restore's work
// dir), and a tgtd of the export's own (Debian's user-space target: this
// kernel has no LIO) serves the views as the LUNs of one target, with
// CHAP. One tgtd per export keeps exports apart: its portal port is its
// own (discovery shows only its target), and stopping it ends nothing
// else. tgtd runs in the foreground in its own process group; the agent
// keeps its PID and control port in the work dir and ends it by them.

// IQNPrefix names every export's target: IQNPrefix + restore id.
const IQNPrefix = "iqn.2026-12.io.restored:"

func (h *Host) iscsiPID(id string) string  { return filepath.Join(h.restoreDir(id), "tgtd.pid") }
func (h *Host) iscsiPort(id string) string { return filepath.Join(h.restoreDir(id), "tgtd.control") }

// chapUser is the export's CHAP user name.
func chapUser(id string) string { return "restored-" + strings.ReplaceAll(id, "-", "")[:16] }

// newCHAPSecret is 16 characters (96 random bits): the most every
// initiator takes (Microsoft's allows 12 to 16).
func newCHAPSecret() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// tgtadm runs tgtadm against the export's tgtd.
func tgtadm(ctx context.Context, port int, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full := append([]string{"-C", strconv.Itoa(port), "--lld", "iscsi"}, args...)
	out, err := exec.CommandContext(ctx, "tgtadm", full...).CombinedOutput()
	if err != nil {
		// Never the arguments: they may hold a CHAP secret.
		return fmt.Errorf("tgtadm --op %s: %w: %s", opOf(args), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func opOf(args []string) string {
	for i, a := range args {
		if a == "--op" && i+1 < len(args) {
			return args[i+1] + " " + strings.Join(args[i+2:min(len(args), i+4)], " ")
		}
	}
	return "?"
}

// freePort is a TCP port free on host now.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeControlPort is a tgtd control port (tgtd takes 0 to 32767; it
// names the daemon's control socket) that no tgtd answers on now.
func freeControlPort(ctx context.Context) (int, error) {
	for i := 0; i < 20; i++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		port := 1024 + (int(b[0])<<8|int(b[1]))%(32767-1024)
		if tgtadm(ctx, port, "--op", "show", "--mode", "sys") != nil {
			return port, nil
		}
	}
	return 0, errors.New("no free tgtd control port found")
}

// serveISCSI starts the export's tgtd and its target: a LUN per disk,
// read-only unless readWrite, any initiator with the CHAP secret (one
// nobody knows until SetCHAP gives a new one). It returns the portal as
// initiators dial it, the IQN and the CHAP user.
func (h *Host) serveISCSI(ctx context.Context, id string, disks []hypervisor.ExportedDisk, readWrite bool) (portal, iqn, user string, err error) {
	port, err := freePort(h.iscsiListen)
	if err != nil {
		return "", "", "", fmt.Errorf("a port for the iSCSI target: %w", err)
	}
	control, err := freeControlPort(ctx)
	if err != nil {
		return "", "", "", err
	}
	cmd := exec.Command("tgtd", "-f", "-C", strconv.Itoa(control), "--iscsi", "portal="+net.JoinHostPort(h.iscsiListen, strconv.Itoa(port)))
	logf, err := os.Create(filepath.Join(h.restoreDir(id), "tgtd.log"))
	if err != nil {
		return "", "", "", err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", "", "", fmt.Errorf("tgtd (Debian's tgt): %w", err)
	}
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(h.iscsiPID(id), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(h.iscsiPort(id), []byte(strconv.Itoa(control)), 0o600); err != nil {
		return "", "", "", err
	}
	deadline := time.Now().Add(15 * time.Second)
	for tgtadm(ctx, control, "--op", "show", "--mode", "target") != nil {
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(h.restoreDir(id), "tgtd.log"))
			return "", "", "", fmt.Errorf("tgtd did not start: %s", strings.TrimSpace(string(b)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	iqn, user = IQNPrefix+id, chapUser(id)
	steps := [][]string{{"--op", "new", "--mode", "target", "--tid", "1", "-T", iqn}}
	for _, d := range disks {
		lun := strconv.Itoa(d.LUN)
		steps = append(steps, []string{"--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", lun, "--bstype", "rdwr", "-b", d.Source})
		if !readWrite {
			steps = append(steps, []string{"--op", "update", "--mode", "logicalunit", "--tid", "1", "--lun", lun, "--params", "readonly=1"})
		}
	}
	steps = append(steps, []string{"--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"})
	for _, s := range steps {
		if err := tgtadm(ctx, control, s...); err != nil {
			return "", "", "", err
		}
	}
	if _, _, err := h.setCHAP(ctx, id, control, false); err != nil {
		return "", "", "", err
	}
	host := h.iscsiAdvertise
	if host == "" {
		host = h.iscsiListen
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), iqn, user, nil
}

// SetCHAP implements hypervisor.Exporter.
func (h *Host) SetCHAP(ctx context.Context, id string) (string, string, error) {
	port, ok := h.targetPort(id)
	if !ok {
		return "", "", fmt.Errorf("restore %s has no iSCSI target on this host: %w", id, hypervisor.ErrNoVM)
	}
	return h.setCHAP(ctx, id, port, true)
}

// setCHAP gives the target's account a new secret: the account is made
// again (replacing drops the old secret), and bound to the target.
func (h *Host) setCHAP(ctx context.Context, id string, port int, replace bool) (string, string, error) {
	user := chapUser(id)
	secret, err := newCHAPSecret()
	if err != nil {
		return "", "", err
	}
	if replace {
		if err := tgtadm(ctx, port, "--op", "delete", "--mode", "account", "--user", user); err != nil {
			return "", "", err
		}
	}
	if err := tgtadm(ctx, port, "--op", "new", "--mode", "account", "--user", user, "--password", secret); err != nil {
		return "", "", err
	}
	if err := tgtadm(ctx, port, "--op", "bind", "--mode", "account", "--tid", "1", "--user", user); err != nil {
		return "", "", err
	}
	return user, secret, nil
}

func (h *Host) targetPort(id string) (int, bool) { return readNumber(h.iscsiPort(id)) }

// stopISCSI ends the export's tgtd: its target deleted (sessions cut),
// the daemon asked to exit, killed by its PID when it does not.
func (h *Host) stopISCSI(id string) error {
	if _, err := os.Lstat(h.iscsiPID(id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	pid, ok := readNumber(h.iscsiPID(id))
	if !ok || pid <= 1 {
		return fmt.Errorf("the iSCSI target of restore %s: unreadable PID file", id)
	}
	if port, ok := h.targetPort(id); ok && alive(pid) {
		ctx := context.Background()
		_ = tgtadm(ctx, port, "--op", "delete", "--force", "--mode", "target", "--tid", "1")
		_ = tgtadm(ctx, port, "--op", "delete", "--mode", "system")
	}
	awaitExit(pid)
	return os.Remove(h.iscsiPID(id))
}

// unmountViews detaches the raw views a killed export daemon left mounted
// (a dead FUSE mount cannot be removed otherwise).
func (h *Host) unmountViews(id string) {
	views, _ := filepath.Glob(filepath.Join(h.restoreDir(id), "*.raw"))
	for _, v := range views {
		_ = syscall.Unmount(v, syscall.MNT_DETACH)
	}
}
