package vmware

import (
	"strings"
	"testing"

	"github.com/restored/restored/internal/exportset"
	"github.com/restored/restored/internal/hypervisor"
)

const flatDescriptor = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 131072 VMFS "app-01-flat.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
`

// Only a flat base disk of one extent is read through the datastore; every
// other kind is refused with what it is.
func TestDescriptorsOfFlatDisksAreReadAndOthersRefused(t *testing.T) {
	d, err := ParseDescriptor([]byte(flatDescriptor))
	if err != nil || d.Extent != "app-01-flat.vmdk" || d.Size != 64<<20 || d.CreateType != "vmfs" {
		t.Fatalf("%+v %v", d, err)
	}
	mono := strings.Replace(strings.Replace(flatDescriptor, `"vmfs"`, `"monolithicFlat"`, 1), "VMFS", "FLAT", 1)
	if d, err := ParseDescriptor([]byte(mono)); err != nil || d.Size != 64<<20 {
		t.Fatalf("monolithicFlat: %+v %v", d, err)
	}
	for _, tc := range []struct{ name, desc, want string }{
		{"a delta (snapshot) disk", strings.Replace(strings.Replace(flatDescriptor, `"vmfs"`, `"vmfsSparse"`, 1), "VMFS \"", "VMFSSPARSE \"", 1), "only flat extents"},
		{"a child of a parent", strings.Replace(flatDescriptor, "parentCID=ffffffff", "parentCID=1a2b3c4d", 1), "delta on a parent"},
		{"seSparse", strings.Replace(flatDescriptor, `"vmfs"`, `"seSparse"`, 1), `createType is "seSparse"`},
		{"two extents", strings.Replace(flatDescriptor, `RW 131072 VMFS "app-01-flat.vmdk"`, "RW 65536 VMFS \"a-flat.vmdk\"\nRW 65536 VMFS \"b-flat.vmdk\"", 1), "2 extents"},
		{"no extent", strings.Replace(flatDescriptor, `RW 131072 VMFS "app-01-flat.vmdk"`, "", 1), "0 extents"},
		{"an extent elsewhere", strings.Replace(flatDescriptor, `"app-01-flat.vmdk"`, `"../other/x-flat.vmdk"`, 1), "outside the disk's directory"},
		{"an extent at an offset", strings.Replace(flatDescriptor, `"app-01-flat.vmdk"`, `"app-01-flat.vmdk" 2048`, 1), "only extents at 0"},
		{"a size no disk has", strings.Replace(flatDescriptor, "131072", "999999999999999999", 1), "size no disk has"},
		{"binary data (a sparse VMDK)", "KDMV\x01\x00\x00\x00", "not a VMDK descriptor"},
		{"a huge file", strings.Repeat("#", maxDescriptor+1), "not a descriptor"},
	} {
		if _, err := ParseDescriptor([]byte(tc.desc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestAChangeIDsEpochIsWhatAResetChanges(t *testing.T) {
	if changeIDEpoch("52 de c0 d9 b9 43 9d 10-61 d5 4c 1b e9 7b 65 63/12") != "52 de c0 d9 b9 43 9d 10-61 d5 4c 1b e9 7b 65 63" {
		t.Fatal("the epoch of a change id")
	}
	if changeIDEpoch("x") != "x" {
		t.Fatal("a change id without a sequence")
	}
}

// The extents a snapshot listed are paged from any offset, with adjacent
// areas merged.
func TestExtentsArePagedFromAnyOffset(t *testing.T) {
	set := exportset.New("unused.sock", nil)
	if _, err := set.Add("scsi0-0", "[ds] vm/vm.vmdk", 100, nil, nil); err != nil {
		t.Fatal(err)
	}
	set.SetExtents("scsi0-0", toExtents([]Extent{{0, 10}, {10, 5}, {40, 10}, {80, 20}}))
	h := &Host{}
	h.serving.Put("s1", &served{Set: set})
	snap := &hypervisor.Snapshot{ID: "s1"}
	p, err := h.ChangedExtents(t.Context(), snap, "scsi0-0", 0, 2)
	if err != nil || len(p.Extents) != 2 || p.Extents[0] != (hypervisor.Extent{Offset: 0, Length: 15}) || p.Next != 80 || p.DiskSize != 100 {
		t.Fatalf("first page: %+v %v", p, err)
	}
	p, err = h.ChangedExtents(t.Context(), snap, "scsi0-0", 45, 10)
	if err != nil || len(p.Extents) != 2 || p.Extents[0] != (hypervisor.Extent{Offset: 45, Length: 5}) || p.Next != -1 {
		t.Fatalf("from inside an extent: %+v %v", p, err)
	}
	if _, err := h.ChangedExtents(t.Context(), snap, "vda", 0, 1); err == nil {
		t.Fatal("a disk the snapshot lacks")
	}
	if _, err := h.ChangedExtents(t.Context(), &hypervisor.Snapshot{ID: "s2"}, "scsi0-0", 0, 1); err == nil {
		t.Fatal("a snapshot not served")
	}
}
