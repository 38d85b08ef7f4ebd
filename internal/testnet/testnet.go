// Package testnet builds test hosts as network namespaces for end-to-end
// tests: one Linux bridge the test owns, and per host a namespace joined to
// it by a veth pair, with an address that exists only inside that
// namespace (no address on the bridge, no default route, no NAT: nothing
// in them reaches the machine's own networks, nor the other way round). A
// host's link can be cut and restored, a host can be partitioned from
// others, processes run inside a host, and the test process itself dials
// from inside one. Close removes every namespace and the bridge; tests
// call it in a cleanup so it runs even when they fail. It uses iproute2.
// It must not touch any interface, route or namespace it did not make.
package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Subnet is where host addresses come from: 198.18.0.0/15 is set aside
// for benchmarking networks (RFC 2544) and is routed nowhere; the
// addresses exist only inside the namespaces.
const Subnet = "198.18.0"

// Net is one test's network: a bridge and the hosts on it.
type Net struct {
	// Prefix names everything this Net makes ("rt" and 4 hex digits).
	Prefix string
	bridge string

	mu    sync.Mutex
	hosts []*Host
}

// Host is one namespace on the bridge.
type Host struct {
	// Name is the test's name for it ("s1"); NS the namespace's name.
	Name, NS string
	// IP is its address (inside the namespace only).
	IP   string
	veth string // the host end, on the bridge, in the root namespace
	net  *Net
}

func run(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New makes the bridge (no address, up).
func New(ctx context.Context) (*Net, error) {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	n := &Net{Prefix: "rt" + hex.EncodeToString(b)}
	n.bridge = n.Prefix + "br"
	if err := run(ctx, "ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	// No IPv6 link-local address on the bridge: the root namespace takes
	// no part in the test's network.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+n.bridge+"/disable_ipv6", []byte("1"), 0o644)
	if err := run(ctx, "ip", "link", "set", n.bridge, "up"); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// Add makes a host: a namespace with loopback up and eth0 (its end of a
// veth pair whose other end is on the bridge) at the next address.
func (n *Net) Add(ctx context.Context, name string) (*Host, error) {
	n.mu.Lock()
	i := len(n.hosts) + 1
	h := &Host{Name: name, NS: n.Prefix + "-" + name, IP: fmt.Sprintf("%s.%d", Subnet, i), veth: fmt.Sprintf("%sv%d", n.Prefix, i), net: n}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	peer := h.veth + "p"
	steps := [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", h.NS},
		{"ip", "link", "set", h.veth, "master", n.bridge},
		{"ip", "link", "set", h.veth, "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		{"ip", "-n", h.NS, "link", "set", peer, "name", "eth0"},
		{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
	}
	return h, nil
}

// Close removes every host's namespace (its veth goes with it) and the
// bridge. It is safe to call more than once.
func (n *Net) Close() error {
	ctx := context.Background()
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		if err := run(ctx, "ip", "netns", "delete", h.NS); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		_ = run(ctx, "ip", "link", "delete", h.veth) // gone with the namespace, unless it never moved
	}
	if err := run(ctx, "ip", "link", "delete", n.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Leftovers lists the namespaces and links named by prefix that still
// exist (a test asserts there are none after Close).
func Leftovers(ctx context.Context, prefix string) []string {
	var out []string
	for _, args := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}} {
		b, _ := exec.CommandContext(ctx, args[0], args[1:]...).Output()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, prefix) {
				out = append(out, strings.TrimSpace(line))
			}
		}
	}
	return out
}

// Command is a command that runs inside the host's namespace (ip netns
// exec execs it: its PID is the command's own).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Addr is the host's address with a port.
func (h *Host) Addr(port int) string { return net.JoinHostPort(h.IP, fmt.Sprint(port)) }

// LinkDown cuts the host off the bridge (its established connections hang,
// as on a pulled cable); LinkUp restores it.
func (h *Host) LinkDown(ctx context.Context) error {
	return run(ctx, "ip", "link", "set", h.veth, "down")
}

// LinkUp restores the host's link.
func (h *Host) LinkUp(ctx context.Context) error { return run(ctx, "ip", "link", "set", h.veth, "up") }

// Partition cuts h off from each of others, both ways (blackhole routes
// inside the namespaces), leaving its other links as they are.
func (h *Host) Partition(ctx context.Context, others ...*Host) error {
	for _, o := range others {
		if err := run(ctx, "ip", "-n", h.NS, "route", "add", "blackhole", o.IP+"/32"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", o.NS, "route", "add", "blackhole", h.IP+"/32"); err != nil {
			return err
		}
	}
	return nil
}

// Heal undoes Partition.
func (h *Host) Heal(ctx context.Context, others ...*Host) error {
	var errs []error
	for _, o := range others {
		errs = append(errs, run(ctx, "ip", "-n", h.NS, "route", "del", "blackhole", o.IP+"/32"),
			run(ctx, "ip", "-n", o.NS, "route", "del", "blackhole", h.IP+"/32"))
	}
	return errors.Join(errs...)
}

// DialContext connects from inside the host's namespace (a socket stays
// in the namespace it was made in). It serves as a net.Dialer for HTTP,
// gRPC and websockets.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.in(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := h.in(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// in runs f on a thread switched into the host's namespace, and back. If
// switching back fails the thread stays locked and dies with the
// goroutine, so no other goroutine ever runs in the wrong namespace.
func (h *Host) in(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer unix.Close(back)
		target, err := unix.Open("/run/netns/"+h.NS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("namespace %s: %w", h.NS, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("enter namespace %s: %w", h.NS, err)
			return
		}
		ferr := f()
		if unix.Setns(back, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- ferr
	}()
	return <-ch
}
