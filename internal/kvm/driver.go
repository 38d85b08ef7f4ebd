package kvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/vmspec"
	"libvirt.org/go/libvirtxml"
)

// DefaultSocket is libvirtd's system socket.
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// Dialer opens a new libvirt connection.
type Dialer func() (Libvirt, error)

// LocalDialer connects to libvirtd's unix socket (qemu:///system).
func LocalDialer(socket string) Dialer {
	return func() (Libvirt, error) {
		l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket), dialers.WithLocalTimeout(5*time.Second)))
		if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
			return nil, fmt.Errorf("connect to libvirtd at %s: %w (is libvirtd running? scripts/start-libvirt.sh starts it)", socket, err)
		}
		return l, nil
	}
}

// Driver manages restore domains on one host.
type Driver struct {
	dial    Dialer
	rawDial func() (net.Conn, error) // screenshots; nil without a local socket
	log     *slog.Logger
	mu      sync.Mutex
	conn    Libvirt
	// observe, when set, is told of every call (OnCall).
	observe func(call string, took time.Duration, err error)
}

// OnCall has fn told of every libvirt call the driver makes: what it was
// (its words up to the first name: "look up checkpoint", "begin backup
// of"), how long it took and how it failed. Set it before the first call.
func (d *Driver) OnCall(fn func(call string, took time.Duration, err error)) { d.observe = fn }

// callName is a call's description without the names in it (domains,
// disks, checkpoints): a bounded set, for metrics.
func callName(what string) string {
	words := strings.Fields(what)
	for i, w := range words {
		if strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			words = words[:i]
			break
		}
	}
	if len(words) == 0 {
		return "other"
	}
	return strings.Join(words, " ")
}

// New returns a driver; it connects on first use and again after a failure.
func New(dial Dialer, log *slog.Logger) *Driver { return &Driver{dial: dial, log: log} }

// NewLocal returns a driver for libvirtd's unix socket at path.
func NewLocal(path string, log *slog.Logger) *Driver {
	d := New(LocalDialer(path), log)
	d.rawDial = func() (net.Conn, error) { return net.DialTimeout("unix", path, 5*time.Second) }
	return d
}

// Close drops the connection.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		_ = d.conn.Disconnect()
		d.conn = nil
	}
}

func (d *Driver) get() (Libvirt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		c, err := d.dial()
		if err != nil {
			return nil, err
		}
		d.conn = c
	}
	return d.conn, nil
}

// drop forgets a connection that failed or overran a deadline.
func (d *Driver) drop(c Libvirt) {
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
	go func() { _ = c.Disconnect() }()
}

// ErrTimeout is returned when libvirt did not answer before the deadline.
var ErrTimeout = errors.New("libvirt did not answer in time")

// call runs one libvirt call under ctx's deadline.
func call[T any](ctx context.Context, d *Driver, what string, fn func(Libvirt) (T, error)) (v T, err error) {
	if d.observe != nil {
		start := time.Now()
		defer func() { d.observe(callName(what), time.Since(start), err) }()
	}
	var zero T
	c, err := d.get()
	if err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn(c)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && isConnectionError(r.err) {
			d.drop(c)
		}
		return r.v, r.err
	case <-ctx.Done():
		d.drop(c) // unblocks the pending call; the next call re-dials
		return zero, fmt.Errorf("%s: %w (%v)", what, ErrTimeout, ctx.Err())
	}
}

func isConnectionError(err error) bool {
	var lerr libvirt.Error
	return !errors.As(err, &lerr) // anything that is not libvirt's own answer
}

func isCode(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// Define defines a domain (validated by libvirt) without starting it.
func (d *Driver) Define(ctx context.Context, dom *libvirtxml.Domain) error {
	_, err := d.define(ctx, dom)
	return err
}

func (d *Driver) define(ctx context.Context, dom *libvirtxml.Domain) (libvirt.Domain, error) {
	xml, err := dom.Marshal()
	if err != nil {
		return libvirt.Domain{}, fmt.Errorf("marshal domain %s: %w", dom.Name, err)
	}
	defined, err := call(ctx, d, "define "+dom.Name, func(l Libvirt) (libvirt.Domain, error) {
		return l.DomainDefineXMLFlags(xml, libvirt.DomainDefineValidate)
	})
	if err != nil {
		return libvirt.Domain{}, fmt.Errorf("define domain %s: %w", dom.Name, err)
	}
	return defined, nil
}

// StartDefined starts a defined domain.
func (d *Driver) StartDefined(ctx context.Context, name string) error {
	dom, err := d.lookup(ctx, name)
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	return d.create(ctx, dom)
}

func (d *Driver) create(ctx context.Context, dom libvirt.Domain) error {
	if _, err := call(ctx, d, "start "+dom.Name, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainCreate(dom)
	}); err != nil {
		return fmt.Errorf("start domain %s: %w", dom.Name, err)
	}
	return nil
}

// Start defines and starts a domain. A failure at any step leaves nothing
// defined.
func (d *Driver) Start(ctx context.Context, dom *libvirtxml.Domain) error {
	r := revert.New()
	defer r.Fail()
	defined, err := d.define(ctx, dom)
	if err != nil {
		return err
	}
	r.Add(func() {
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.undefine(uctx, defined); err != nil {
			d.log.Error("undo define failed", "domain", dom.Name, "err", err)
		}
	})
	if err := d.create(ctx, defined); err != nil {
		return err
	}
	r.Success()
	return nil
}

const undefineFlags = libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
	libvirt.DomainUndefineNvram | libvirt.DomainUndefineCheckpointsMetadata

func (d *Driver) undefine(ctx context.Context, dom libvirt.Domain) error {
	_, err := call(ctx, d, "undefine "+dom.Name, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainUndefineFlags(dom, undefineFlags)
	})
	if err != nil && !isCode(err, libvirt.ErrNoDomain) {
		return err
	}
	return nil
}

// Destroy stops and undefines a domain, with its snapshot and checkpoint
// metadata and NVRAM. A domain that does not exist is already destroyed.
func (d *Driver) Destroy(ctx context.Context, name string) error {
	dom, err := call(ctx, d, "look up "+name, func(l Libvirt) (libvirt.Domain, error) {
		return l.DomainLookupByName(name)
	})
	if isCode(err, libvirt.ErrNoDomain) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	_, err = call(ctx, d, "destroy "+name, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainDestroyFlags(dom, 0)
	})
	if err != nil && !isCode(err, libvirt.ErrOperationInvalid) && !isCode(err, libvirt.ErrNoDomain) {
		return fmt.Errorf("destroy domain %s: %w", name, err)
	}
	if err := d.undefine(ctx, dom); err != nil {
		return fmt.Errorf("undefine domain %s: %w", name, err)
	}
	return nil
}

// Domain is a restore domain found in libvirt.
type Domain struct {
	Name    string
	Meta    vmspec.Metadata
	Running bool
	// Spec is the domain as libvirt has it.
	Spec *libvirtxml.Domain
}

// listed is one domain with its definition, as libvirt has it now.
type listed struct {
	dom  libvirt.Domain
	spec *libvirtxml.Domain
}

// allDomains reads every domain's definition (one that vanishes meanwhile
// is left out). List and Inventory both start here.
func (d *Driver) allDomains(ctx context.Context) ([]listed, error) {
	doms, err := call(ctx, d, "list domains", func(l Libvirt) ([]libvirt.Domain, error) {
		ds, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive|libvirt.ConnectListDomainsInactive)
		return ds, err
	})
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	out := make([]listed, 0, len(doms))
	for _, dom := range doms {
		xml, err := call(ctx, d, "read "+dom.Name, func(l Libvirt) (string, error) {
			return l.DomainGetXMLDesc(dom, 0)
		})
		if isCode(err, libvirt.ErrNoDomain) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read domain %s: %w", dom.Name, err)
		}
		spec := &libvirtxml.Domain{}
		if err := spec.Unmarshal(xml); err != nil {
			return nil, fmt.Errorf("parse domain %s: %w", dom.Name, err)
		}
		out = append(out, listed{dom: dom, spec: spec})
	}
	return out, nil
}

// running says whether dom runs (or is paused); gone when it vanished
// meanwhile.
func (d *Driver) running(ctx context.Context, dom libvirt.Domain) (running, gone bool, err error) {
	state, err := call(ctx, d, "state of "+dom.Name, func(l Libvirt) (int32, error) {
		s, _, err := l.DomainGetState(dom, 0)
		return s, err
	})
	if isCode(err, libvirt.ErrNoDomain) {
		return false, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("state of domain %s: %w", dom.Name, err)
	}
	// Paused counts: its QEMU holds the guest, memory and all (a restore
	// paused on its overlay's limit or a full disk is not booted again).
	st := libvirt.DomainState(state)
	return st == libvirt.DomainRunning || st == libvirt.DomainPaused, false, nil
}

// List returns every domain that carries Restored's metadata.
func (d *Driver) List(ctx context.Context) ([]Domain, error) {
	all, err := d.allDomains(ctx)
	if err != nil {
		return nil, err
	}
	var out []Domain
	for _, x := range all {
		meta, ok := vmspec.ParseMetadata(x.spec)
		if !ok {
			continue // not ours: never touched
		}
		running, _, err := d.running(ctx, x.dom) // one gone meanwhile is listed, stopped
		if err != nil {
			return nil, err
		}
		out = append(out, Domain{Name: x.dom.Name, Meta: meta, Running: running, Spec: x.spec})
	}
	return out, nil
}
