package vmware

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Snapshot is a VM snapshot as vSphere reports it.
type Snapshot struct {
	Moref string
	Name  string
	// Description is the snapshot's description (Restored's say whose).
	Description string
	// Quiesced is what vSphere recorded, not what was asked.
	Quiesced bool
	// QuiesceReason says why a quiesce that was asked is not there.
	QuiesceReason string
	// Disks are the VM's disks in the snapshot, with their change ids.
	Disks []Disk
}

// CreateSnapshot takes a disk-only snapshot. With quiesce, vSphere asks
// VMware Tools to quiesce the guest; when that fails, the snapshot is taken
// crash-consistent and QuiesceReason carries vSphere's error.
func (d *Driver) CreateSnapshot(ctx context.Context, moref, name, description string, quiesce bool) (*Snapshot, error) {
	vm, _, err := d.vm(ctx, moref)
	if err != nil {
		return nil, err
	}
	take := func(q bool) (types.ManagedObjectReference, error) {
		task, err := vm.CreateSnapshot(ctx, name, description, false, q)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		info, err := task.WaitForResult(ctx)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		ref, ok := info.Result.(types.ManagedObjectReference)
		if !ok {
			return ref, fmt.Errorf("the snapshot task returned %T, not a snapshot", info.Result)
		}
		return ref, nil
	}
	reason := ""
	ref, err := take(quiesce)
	if err != nil && quiesce {
		reason = "vSphere could not quiesce the guest: " + err.Error()
		ref, err = take(false)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", moref, err)
	}
	s, err := d.snapshot(ctx, moref, ref.Value)
	if err != nil {
		return nil, err
	}
	if quiesce && !s.Quiesced && reason == "" {
		reason = "vSphere took the snapshot without quiescing the guest"
	}
	s.QuiesceReason = reason
	return s, nil
}

// Snapshots lists the VM's snapshots, parents before children.
func (d *Driver) Snapshots(ctx context.Context, moref string) ([]Snapshot, error) {
	_, props, err := d.vm(ctx, moref)
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	if props.Snapshot == nil {
		return out, nil
	}
	var walk func(ts []types.VirtualMachineSnapshotTree)
	walk = func(ts []types.VirtualMachineSnapshotTree) {
		for _, t := range ts {
			out = append(out, Snapshot{Moref: t.Snapshot.Value, Name: t.Name, Description: t.Description, Quiesced: t.Quiesced})
			walk(t.ChildSnapshotList)
		}
	}
	walk(props.Snapshot.RootSnapshotList)
	return out, nil
}

// snapshot reads one snapshot: its tree entry and its disks.
func (d *Driver) snapshot(ctx context.Context, moref, snapshot string) (*Snapshot, error) {
	all, err := d.Snapshots(ctx, moref)
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Moref != snapshot {
			continue
		}
		var snap mo.VirtualMachineSnapshot
		ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: snapshot}
		if err := property.DefaultCollector(d.c.Client).RetrieveOne(ctx, ref, []string{"config.hardware"}, &snap); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", snapshot, err)
		}
		s.Disks = disksOf(snap.Config.Hardware.Device)
		return &s, nil
	}
	return nil, fmt.Errorf("snapshot %s of %s: %w", snapshot, moref, ErrNotFound)
}

// RemoveSnapshot removes one snapshot (consolidating its disks into the
// VM's). Gone already is not an error.
func (d *Driver) RemoveSnapshot(ctx context.Context, moref, snapshot string) error {
	if _, err := d.snapshot(ctx, moref, snapshot); err != nil {
		if strings.Contains(err.Error(), ErrNotFound.Error()) {
			return nil
		}
		return err
	}
	ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: snapshot}
	if err := removeSnapshot(ctx, d, ref); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", snapshot, err)
	}
	return nil
}
