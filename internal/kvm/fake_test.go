package kvm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeLibvirt records calls and fails or hangs where told to.
type fakeLibvirt struct {
	Libvirt     // calls the tests do not expect panic
	mu          sync.Mutex
	calls       []string
	createErr   error
	hang        chan struct{} // DomainLookupByName blocks on it when set
	gone        bool          // libvirtd went away: every call fails as a broken socket does
	defined     map[string]bool
	disconnects int
}

func (f *fakeLibvirt) rec(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeLibvirt) DomainDefineXMLFlags(xml string, _ libvirt.DomainDefineFlags) (libvirt.Domain, error) {
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal(xml); err != nil {
		return libvirt.Domain{}, err
	}
	f.rec("define " + d.Name)
	f.defined[d.Name] = true
	return libvirt.Domain{Name: d.Name}, nil
}
func (f *fakeLibvirt) DomainCreate(d libvirt.Domain) error {
	f.rec("create " + d.Name)
	return f.createErr
}
func (f *fakeLibvirt) DomainDestroyFlags(d libvirt.Domain, _ libvirt.DomainDestroyFlagsValues) error {
	f.rec("destroy " + d.Name)
	return libvirt.Error{Code: uint32(libvirt.ErrOperationInvalid), Message: "domain is not running"}
}
func (f *fakeLibvirt) DomainUndefineFlags(d libvirt.Domain, flags libvirt.DomainUndefineFlagsValues) error {
	f.rec("undefine " + d.Name)
	if flags&libvirt.DomainUndefineNvram == 0 || flags&libvirt.DomainUndefineSnapshotsMetadata == 0 || flags&libvirt.DomainUndefineCheckpointsMetadata == 0 {
		return errors.New("undefine without the nvram/snapshot/checkpoint flags")
	}
	delete(f.defined, d.Name)
	return nil
}
func (f *fakeLibvirt) DomainLookupByName(name string) (libvirt.Domain, error) {
	if f.hang != nil {
		<-f.hang
	}
	f.rec("lookup " + name)
	if f.gone {
		return libvirt.Domain{}, errors.New("write unix @->/var/run/libvirt/libvirt-sock: broken pipe")
	}
	if !f.defined[name] {
		return libvirt.Domain{}, libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "no domain"}
	}
	return libvirt.Domain{Name: name}, nil
}
func (f *fakeLibvirt) ConnectListAllDomains(int32, libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error) {
	return nil, 0, nil
}
func (f *fakeLibvirt) DomainGetXMLDesc(libvirt.Domain, libvirt.DomainXMLFlags) (string, error) {
	return "", nil
}
func (f *fakeLibvirt) DomainGetState(libvirt.Domain, uint32) (int32, int32, error) { return 0, 0, nil }
func (f *fakeLibvirt) QEMUDomainAgentCommand(libvirt.Domain, string, int32, uint32) (libvirt.OptString, error) {
	return libvirt.OptString{`{"return":{}}`}, nil
}
func (f *fakeLibvirt) DomainMemoryPeek(libvirt.Domain, uint64, uint32, libvirt.DomainMemoryFlags) ([]byte, error) {
	return nil, nil
}
func (f *fakeLibvirt) NodeGetInfo() ([32]int8, uint64, int32, int32, int32, int32, int32, int32, error) {
	return [32]int8{}, 4 << 20, 2, 0, 1, 1, 2, 1, nil
}
func (f *fakeLibvirt) Disconnect() error {
	f.mu.Lock()
	f.disconnects++
	f.mu.Unlock()
	return nil
}

func newFake() (*fakeLibvirt, *Driver, *int) {
	f := &fakeLibvirt{defined: map[string]bool{}}
	dials := 0
	d := New(func() (Libvirt, error) { dials++; return f, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f, d, &dials
}

func TestStartUndefinesWhenTheDomainDoesNotStart(t *testing.T) {
	f, d, _ := newFake()
	f.createErr = libvirt.Error{Code: 1, Message: "qemu exited"}
	err := d.Start(context.Background(), &libvirtxml.Domain{Type: "qemu", Name: "restored-x"})
	if err == nil || !strings.Contains(err.Error(), "qemu exited") {
		t.Fatalf("err %v", err)
	}
	if got := strings.Join(f.calls, ","); got != "define restored-x,create restored-x,undefine restored-x" {
		t.Fatalf("calls %s", got)
	}
	if f.defined["restored-x"] {
		t.Fatal("a failed start left the domain defined")
	}
}

func TestDestroyIsIdempotent(t *testing.T) {
	f, d, _ := newFake()
	f.defined["restored-y"] = true
	for i := 0; i < 2; i++ {
		if err := d.Destroy(context.Background(), "restored-y"); err != nil {
			t.Fatalf("destroy #%d: %v", i+1, err)
		}
	}
	if f.defined["restored-y"] {
		t.Fatal("still defined")
	}
}

func TestACallThatOverrunsItsDeadlineDropsTheConnection(t *testing.T) {
	f, d, dials := newFake()
	f.hang = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := d.Destroy(ctx, "restored-z")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	close(f.hang) // a closed channel never blocks again
	if err := d.Destroy(context.Background(), "restored-z"); err != nil {
		t.Fatal(err)
	}
	if *dials != 2 {
		t.Fatalf("dialled %d times, want a fresh connection after the timeout", *dials)
	}
}

// libvirtd restarts: the call on the dead connection fails with the socket's
// error, and the next call dials a fresh connection instead of reusing it.
func TestTheDriverRedialsAfterLibvirtdRestarted(t *testing.T) {
	old := &fakeLibvirt{defined: map[string]bool{"restored-r": true}, gone: true}
	fresh := &fakeLibvirt{defined: map[string]bool{"restored-r": true}}
	conns := []*fakeLibvirt{old, fresh}
	dials := 0
	d := New(func() (Libvirt, error) { c := conns[dials]; dials++; return c, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.Destroy(context.Background(), "restored-r"); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("call on the dead connection: %v", err)
	}
	if err := d.Destroy(context.Background(), "restored-r"); err != nil {
		t.Fatalf("call after libvirtd came back: %v", err)
	}
	if dials != 2 || fresh.defined["restored-r"] {
		t.Fatalf("dials %d, still defined %v: want a second connection that did the work", dials, fresh.defined["restored-r"])
	}
	// drop closes the dead connection in the background.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		old.mu.Lock()
		n := old.disconnects
		old.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead connection was closed %d times, want 1", n)
		}
	}
}

func (f *fakeLibvirt) DomainBlockCopy(libvirt.Domain, string, string, []libvirt.TypedParam, libvirt.DomainBlockCopyFlags) error {
	return errors.New("fake: no block copy")
}
func (f *fakeLibvirt) DomainGetBlockJobInfo(libvirt.Domain, string, uint32) (int32, int32, uint64, uint64, uint64, error) {
	return 0, 0, 0, 0, 0, nil
}
func (f *fakeLibvirt) DomainBlockJobAbort(libvirt.Domain, string, libvirt.DomainBlockJobAbortFlags) error {
	return nil
}
func (f *fakeLibvirt) DomainSetMetadata(libvirt.Domain, int32, libvirt.OptString, libvirt.OptString, libvirt.OptString, libvirt.DomainModificationImpact) error {
	return nil
}
func (f *fakeLibvirt) StoragePoolLookupByName(string) (libvirt.StoragePool, error) {
	return libvirt.StoragePool{}, errors.New("fake: no pools")
}
func (f *fakeLibvirt) StoragePoolGetXMLDesc(libvirt.StoragePool, libvirt.StorageXMLFlags) (string, error) {
	return "", errors.New("fake: no pools")
}
func (f *fakeLibvirt) StoragePoolRefresh(libvirt.StoragePool, uint32) error { return nil }
