// Package hypervisortest is a fake hypervisor for unit tests of the agent:
// VMs in memory, every call recorded, and faults to inject (a teardown
// that fails, a driver that hangs until its deadline, a boot that fails).
package hypervisortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
)

// VM is a fake VM.
type VM struct {
	Spec    hypervisor.RestoreSpec
	Running bool
}

// Fake is an in-memory hypervisor.
type Fake struct {
	// Caps is what it declares (Default when zero).
	Caps hypervisor.Set

	mu    sync.Mutex
	vms   map[string]*VM
	files map[string]bool // restores with files but no VM
	calls []string
	snaps map[string]*hypervisor.Snapshot
	// inventory is what Inventory lists.
	inventory []hypervisor.Domain

	// Faults. failTeardown[id] is how many coming teardowns of id fail.
	failTeardown map[string]int
	hangOwned    chan struct{}
	bootErr      error
	guestUp      bool
}

// Default is what the fake declares unless told otherwise: restores with a
// guest agent and snapshots, no screen.
const Default = hypervisor.Set(hypervisor.Restores | hypervisor.InstantRestores | hypervisor.GuestAgent |
	hypervisor.Snapshots | hypervisor.Quiesce | hypervisor.ChangedBlocks)

var (
	_ hypervisor.Driver      = (*Fake)(nil)
	_ hypervisor.Restorer    = (*Fake)(nil)
	_ hypervisor.Observer    = (*Fake)(nil)
	_ hypervisor.Snapshotter = (*Fake)(nil)
)

// New returns a fake whose guests' agents answer at once.
func New() *Fake {
	return &Fake{vms: map[string]*VM{}, files: map[string]bool{}, snaps: map[string]*hypervisor.Snapshot{},
		failTeardown: map[string]int{}, guestUp: true}
}

func (f *Fake) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls made so far that change something ("prepare r1",
// "boot r1", "teardown r1", "snapshot s1", "release s1"), in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// AddVM puts a VM there, as if an earlier run of the agent made it.
func (f *Fake) AddVM(id string, running bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vms[id] = &VM{Running: running}
}

// AddFiles leaves files of a restore without a VM.
func (f *Fake) AddFiles(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[id] = true
}

// VM returns the VM of a restore, or nil.
func (f *Fake) VM(id string) *VM {
	f.mu.Lock()
	defer f.mu.Unlock()
	if vm, ok := f.vms[id]; ok {
		c := *vm
		return &c
	}
	return nil
}

// Holds says whether anything of the restore is left.
func (f *Fake) Holds(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vms[id] != nil || f.files[id]
}

// FailTeardowns makes the next n teardowns of id fail.
func (f *Fake) FailTeardowns(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failTeardown[id] = n
}

// HangOwned makes Owned block until its context ends, until released.
func (f *Fake) HangOwned() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.hangOwned = ch
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hangOwned == ch {
			close(ch)
			f.hangOwned = nil
		}
	}
}

// FailBoots makes every boot fail with err (nil: boots work).
func (f *Fake) FailBoots(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootErr = err
}

// GuestAgentUp says whether the guests' agents answer.
func (f *Fake) GuestAgentUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.guestUp = up
}

// Kind implements hypervisor.Driver.
func (f *Fake) Kind() kinds.Hypervisor { return kinds.KVM }

// Capabilities implements hypervisor.Driver.
func (f *Fake) Capabilities() hypervisor.Set {
	if f.Caps == 0 {
		return Default
	}
	return f.Caps
}

// Size implements hypervisor.Driver.
func (f *Fake) Size(context.Context) (hypervisor.Size, error) {
	return hypervisor.Size{CPUs: 8, MemoryMiB: 16384}, nil
}

// Close implements hypervisor.Driver.
func (f *Fake) Close() {}

// Prepare implements hypervisor.Restorer.
func (f *Fake) Prepare(ctx context.Context, spec hypervisor.RestoreSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("prepare %s", spec.ID)
	if len(spec.Disks) == 0 || len(spec.Disks[0].Chain) == 0 {
		return errors.New("no disk to boot")
	}
	f.vms[spec.ID] = &VM{Spec: spec}
	delete(f.files, spec.ID)
	return ctx.Err()
}

// Boot implements hypervisor.Restorer.
func (f *Fake) Boot(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("boot %s", id)
	vm := f.vms[id]
	switch {
	case vm == nil:
		return fmt.Errorf("restore %s is not prepared", id)
	case f.bootErr != nil:
		return f.bootErr
	}
	vm.Running = true
	return nil
}

// Teardown implements hypervisor.Restorer.
func (f *Fake) Teardown(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("teardown %s", id)
	if f.failTeardown[id] > 0 {
		f.failTeardown[id]--
		return fmt.Errorf("teardown of %s: the hypervisor refused (injected)", id)
	}
	delete(f.vms, id)
	delete(f.files, id)
	return nil
}

// LinkUp implements hypervisor.Restorer.
func (f *Fake) LinkUp(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("link-up %s", id)
	if vm := f.vms[id]; vm != nil {
		vm.Spec.LinkDown = false
		return nil
	}
	return hypervisor.ErrNoVM
}

// Owned implements hypervisor.Restorer.
func (f *Fake) Owned(ctx context.Context) ([]hypervisor.Owned, error) {
	f.mu.Lock()
	hang := f.hangOwned
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, fmt.Errorf("list VMs: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hypervisor.Owned
	for id, vm := range f.vms {
		out = append(out, hypervisor.Owned{ID: id, VM: true, Running: vm.Running})
	}
	for id := range f.files {
		out = append(out, hypervisor.Owned{ID: id})
	}
	return out, nil
}

func (f *Fake) running(id string) error {
	if vm := f.vms[id]; vm == nil || !vm.Running {
		return fmt.Errorf("restore %s: %w", id, hypervisor.ErrNoVM)
	}
	return nil
}

// Screenshot implements hypervisor.Observer (the fake has no screen).
func (f *Fake) Screenshot(context.Context, string) (hypervisor.Screen, error) {
	return hypervisor.Screen{}, hypervisor.Set(0).Need(hypervisor.Screenshots, "the fake")
}

// TextScreen implements hypervisor.Observer.
func (f *Fake) TextScreen(context.Context, string) ([]string, error) {
	return nil, hypervisor.Set(0).Need(hypervisor.Screenshots, "the fake")
}

// Serial implements hypervisor.Observer.
func (f *Fake) Serial(_ context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.running(id); err != nil {
		return nil, err
	}
	return []byte("fake guest\nlogin: "), nil
}

// GuestPing implements hypervisor.Observer.
func (f *Fake) GuestPing(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.running(id); err != nil {
		return err
	}
	if !f.guestUp {
		return errors.New("guest agent not answering")
	}
	return ctx.Err()
}

// GuestCommand implements hypervisor.Observer: every command answers {}.
func (f *Fake) GuestCommand(ctx context.Context, id, _ string, _ any) (json.RawMessage, error) {
	if err := f.GuestPing(ctx, id); err != nil {
		return nil, err
	}
	return json.RawMessage(`{}`), nil
}

// GuestExec implements hypervisor.Observer: every program exits 0 and
// prints its path.
func (f *Fake) GuestExec(ctx context.Context, id, path string, _ ...string) (hypervisor.ExecResult, error) {
	if err := f.GuestPing(ctx, id); err != nil {
		return hypervisor.ExecResult{}, err
	}
	return hypervisor.ExecResult{Stdout: []byte(path)}, nil
}

// Console implements hypervisor.Observer.
func (f *Fake) Console(context.Context, string) (hypervisor.ConsoleEndpoint, error) {
	return hypervisor.ConsoleEndpoint{}, hypervisor.Set(0).Need(hypervisor.Console, "the fake")
}

// SetInventory sets the domains Inventory lists.
func (f *Fake) SetInventory(ds ...hypervisor.Domain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inventory = ds
}

// Inventory implements hypervisor.Snapshotter.
func (f *Fake) Inventory(context.Context) ([]hypervisor.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hypervisor.Domain(nil), f.inventory...), nil
}

// TakeSnapshot implements hypervisor.Snapshotter.
func (f *Fake) TakeSnapshot(_ context.Context, spec hypervisor.SnapshotSpec) (*hypervisor.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("snapshot %s", spec.ID)
	s := &hypervisor.Snapshot{ID: spec.ID, Quiesced: spec.Quiesce, Checkpoint: "restored-" + spec.ID,
		Disks: []hypervisor.SnapshotDisk{{Name: "vda", Size: 1 << 20, URI: "nbd+unix:///x?socket=/run/fake/x.sock", Export: "x"}}}
	f.snaps[spec.ID] = s
	return s, nil
}

// ChangedExtents implements hypervisor.Snapshotter: one changed MiB.
func (f *Fake) ChangedExtents(_ context.Context, s *hypervisor.Snapshot, _ string, offset int64, _ int) (hypervisor.Extents, error) {
	if offset > 0 {
		return hypervisor.Extents{DiskSize: 1 << 20, Next: -1}, nil
	}
	return hypervisor.Extents{DiskSize: 1 << 20, Extents: []hypervisor.Extent{{Offset: 0, Length: 1 << 20}}, Next: -1}, nil
}

// ReleaseSnapshot implements hypervisor.Snapshotter.
func (f *Fake) ReleaseSnapshot(_ context.Context, spec hypervisor.ReleaseSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("release %s", spec.ID)
	delete(f.snaps, spec.ID)
	return nil
}

// EndStale implements hypervisor.Snapshotter.
func (f *Fake) EndStale(context.Context) (int, error) { return 0, nil }
