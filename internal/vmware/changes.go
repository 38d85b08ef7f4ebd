package vmware

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

func removeSnapshot(ctx context.Context, d *Driver, ref types.ManagedObjectReference) error {
	res, err := methods.RemoveSnapshot_Task(ctx, d.c.Client, &types.RemoveSnapshot_Task{
		This: ref, RemoveChildren: false, Consolidate: types.NewBool(true),
	})
	if err != nil {
		return err
	}
	return object.NewTask(d.c.Client, res.Returnval).Wait(ctx)
}

// Extent is a changed area of a disk.
type Extent struct {
	Offset, Length int64
}

// ChangedAreas asks vSphere which areas of disk (by device key) changed
// between the change id sinceChangeID and the snapshot, paging through the
// answers until the whole disk is covered. sinceChangeID "*" asks for every
// allocated area (a full backup of a thin disk).
func (d *Driver) ChangedAreas(ctx context.Context, moref, snapshot string, disk Disk, sinceChangeID string) ([]Extent, error) {
	if sinceChangeID == "" {
		return nil, fmt.Errorf("a change id is required (\"*\" for every allocated area)")
	}
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: moref}
	snap := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: snapshot}
	var out []Extent
	for offset := int64(0); offset < disk.Capacity; {
		res, err := methods.QueryChangedDiskAreas(ctx, d.c.Client, &types.QueryChangedDiskAreas{
			This: vm, Snapshot: &snap, DeviceKey: disk.Key, StartOffset: offset, ChangeId: sinceChangeID,
		})
		if err != nil {
			return nil, fmt.Errorf("changed areas of disk %d of %s since %s: %w", disk.Key, moref, sinceChangeID, err)
		}
		info := res.Returnval
		if info.Length <= 0 || info.StartOffset != offset {
			return nil, fmt.Errorf("vSphere answered changed areas %d+%d for a query at %d", info.StartOffset, info.Length, offset)
		}
		for _, a := range info.ChangedArea {
			if a.Start < info.StartOffset || a.Start+a.Length > info.StartOffset+info.Length {
				return nil, fmt.Errorf("vSphere answered a changed area %d+%d outside %d+%d", a.Start, a.Length, info.StartOffset, info.Length)
			}
			out = append(out, Extent{Offset: a.Start, Length: a.Length})
		}
		offset = info.StartOffset + info.Length
	}
	return out, nil
}
