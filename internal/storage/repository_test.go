package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/restored/restored/internal/kinds"
)

const gib = int64(1) << 30

func TestScanAcceptsValidRecoveryPointsAndChains(t *testing.T) {
	r := newRepo(t)
	r.full("acme", "web-01", "rp-1", gib)
	// rp-2 is an incremental qcow2 on rp-1's disk0, named relatively.
	writeQCOW2(t, filepath.Join(r.dir("acme", "web-01", "rp-2"), "disk0.qcow2"), qcow2Spec{size: gib, backing: "../rp-1/disk0.raw", backingFormat: "raw"})
	r.manifest("acme", "web-01", "rp-2", Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "rp-1"}}})
	// A 1 TiB sparse raw disk is fine and costs nothing to check.
	r.full("globex", "db", "rp-big", 1<<40)

	rps, skipped, err := (&Repository{Root: r.root}).Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 {
		t.Fatalf("skipped: %v", skipped)
	}
	if len(rps) != 3 {
		t.Fatalf("found %d recovery points, want 3", len(rps))
	}
	for _, rp := range rps {
		if !rp.Valid {
			t.Errorf("%s invalid: %s", rp.ID, rp.Reason)
		}
	}
	inc := rps[1]
	if inc.ID != "rp-2" || inc.Disks[0].BackingPath != filepath.Join(r.root, "acme/web-01/rp-1/disk0.raw") || inc.Disks[0].BackingFormat != kinds.Raw {
		t.Fatalf("rp-2 resolved to %+v", inc.Disks)
	}
}

func TestHostileRecoveryPointsAreInvalidWithAReason(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:x:..."), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		build func(r *repo)
		want  string
	}{
		{"qcow2 names /etc/shadow as backing file", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "/etc/shadow", backingFormat: "raw"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, `names backing file "/etc/shadow" but the manifest declares no backing`},
		{"declared backing, but the header points elsewhere", func(r *repo) {
			r.full("acme", "a", "base", gib)
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "/etc/shadow", backingFormat: "raw"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "base"}}})
		}, `backing file "/etc/shadow" is not disk disk0 of recovery point base`},
		{"backing through a symlink out of the repository", func(r *repo) {
			r.full("acme", "a", "base", gib)
			link := filepath.Join(r.dir("acme", "a", "rp"), "link")
			if err := os.Symlink(secret, link); err != nil {
				t.Fatal(err)
			}
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "link"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "base"}}})
		}, "is not disk disk0 of recovery point base"},
		{"backing recovery point of another tenant", func(r *repo) {
			r.full("other", "a", "base", gib)
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "../../../other/a/base/disk0.raw"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "base"}}})
		}, "backing recovery point base"},
		{"backing format differs from the backing manifest", func(r *repo) {
			r.full("acme", "a", "base", gib)
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "../base/disk0.raw", backingFormat: "qcow2"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "base"}}})
		}, "says its backing file is qcow2 but the backing manifest says raw"},
		{"backing chain loops", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "x"), "d.qcow2"), qcow2Spec{size: gib, backing: "../y/d.qcow2"})
			r.manifest("acme", "a", "x", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "y"}}})
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "y"), "d.qcow2"), qcow2Spec{size: gib, backing: "../x/d.qcow2"})
			r.manifest("acme", "a", "y", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "x"}}})
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, backing: "../x/d.qcow2"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "x"}}})
		}, "loops back"},
		{"external data file", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, dataFile: "/dev/sda", incompat: incompatDataFile})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "external data file"},
		{"external data file bit without a name", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, incompat: incompatDataFile})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "external data file"},
		{"qcow2 size differs from the manifest", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: 2 * gib})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "qcow2 virtual size is 2147483648 bytes but the manifest says 1073741824"},
		{"raw size differs from the manifest", func(r *repo) {
			r.raw("acme", "a", "rp", "d.raw", gib+1)
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: gib}}})
		}, "raw file is 1073741825 bytes"},
		{"declared qcow2 is not qcow2", func(r *repo) {
			r.raw("acme", "a", "rp", "d.qcow2", gib)
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "not a qcow2 image"},
		{"declared raw is a qcow2 with a backing file: never probed, size is the file's", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.raw"), qcow2Spec{size: gib, backing: "/etc/shadow"})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: gib}}})
		}, "raw file is"},
		{"file with ..", func(r *repo) {
			r.full("acme", "a", "other", gib)
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "../other/disk0.raw", Format: kinds.Raw, VirtualSize: gib}}})
		}, "no '..'"},
		{"absolute file", func(r *repo) {
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: secret, Format: kinds.Raw, VirtualSize: 10}}})
		}, "is absolute"},
		{"file is a symlink out", func(r *repo) {
			if err := os.Symlink(secret, filepath.Join(r.dir("acme", "a", "rp"), "d.raw")); err != nil {
				t.Fatal(err)
			}
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: 10}}})
		}, "leads outside the recovery point's directory"},
		{"file is a device", func(r *repo) {
			if err := os.Symlink("/dev/null", filepath.Join(r.dir("acme", "a", "rp"), "d.raw")); err != nil {
				t.Fatal(err)
			}
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: 10}}})
		}, "outside"},
		{"missing disk file", func(r *repo) {
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "nope.raw", Format: kinds.Raw, VirtualSize: 10}}})
		}, "no such file"},
		{"tenant in manifest differs from the directory", func(r *repo) {
			r.raw("acme", "a", "rp", "disk0.raw", gib)
			r.manifest("acme", "a", "rp", Manifest{Tenant: "globex", Disks: []Disk{{Name: "disk0", File: "disk0.raw", Format: kinds.Raw, VirtualSize: gib}}})
		}, "must match the directories"},
		{"unknown format", func(r *repo) {
			r.raw("acme", "a", "rp", "d.vmdk", gib)
			r.manifestEdited("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.vmdk", Format: kinds.Raw, VirtualSize: gib}}}, `"format":"raw"`, `"format":"vmdk"`)
		}, `format "vmdk" must be raw or qcow2`},
		{"manifest is not JSON", func(r *repo) {
			if err := os.WriteFile(filepath.Join(r.dir("acme", "a", "rp"), ManifestName), []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "manifest.json is not valid"},
		{"manifest has an unknown field", func(r *repo) {
			if err := os.WriteFile(filepath.Join(r.dir("acme", "a", "rp"), ManifestName), []byte(`{"id":"rp","evil":1}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, `unknown field "evil"`},
		{"no manifest", func(r *repo) { r.dir("acme", "a", "rp") }, "manifest.json"},
		// The hostile corpus of issue 11 (Nova's format_inspector cases and ours).
		{"a VMDK whose flat extent points outside the recovery point, declared vmdk", func(r *repo) {
			if err := os.WriteFile(filepath.Join(r.dir("acme", "a", "rp"), "d.vmdk"), []byte("# Disk DescriptorFile\nversion=1\nRW 2048 FLAT \"/etc/shadow\" 0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r.manifestEdited("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.vmdk", Format: kinds.Raw, VirtualSize: gib}}}, `"format":"raw"`, `"format":"vmdk"`)
		}, "format"},
		{"a 2^63 virtual size", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: 1<<63 - 1})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: 1<<63 - 1}}})
		}, "up to 64 TiB"},
		{"a qcow2 header claiming 2^63 bytes under a sane manifest", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: 1<<63 - 1})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "absurd"},
		{"a qcow2 refcount table overflowing (2^32-1 clusters)", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{48: 1 << 16, 56: 0xffffffff}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "refcount table"},
		{"a qcow2 refcount table at an unaligned offset", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{48: 12345, 56: 1}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "refcount table offset"},
		{"a qcow2 L1 table of 2^32-1 entries", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{36: 0xffffffff, 40: 1 << 16}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "L1 table"},
		{"an encrypted (LUKS) qcow2", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{32: 2}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "encrypted"},
		{"a qcow2 with 4 GiB clusters", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{20: 32}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "cluster bits"},
		{"a qcow2 needing features nobody knows", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, incompat: 1 << 40})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "features"},
		{"a qcow2 with a million internal snapshots", func(r *repo) {
			writeQCOW2(t, filepath.Join(r.dir("acme", "a", "rp"), "d.qcow2"), qcow2Spec{size: gib, set: map[int]uint64{60: 1 << 20}})
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.qcow2", Format: kinds.QCOW2, VirtualSize: gib}}})
		}, "internal snapshots"},
		{"a manifest of 10 MiB", func(r *repo) {
			r.raw("acme", "a", "rp", "d.raw", gib)
			r.manifestEdited("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: gib}}}, `"os":"linux"`, `"os":"linux","pad":"`+strings.Repeat("x", 10<<20)+`"`)
		}, "larger than 1 MiB"},
		{"a manifest with 10,000 disks", func(r *repo) {
			disks := make([]Disk, 10000)
			for i := range disks {
				disks[i] = Disk{Name: fmt.Sprintf("d%d", i), File: fmt.Sprintf("d%d.raw", i), Format: kinds.Raw, VirtualSize: gib}
			}
			r.manifest("acme", "a", "rp", Manifest{Disks: disks})
		}, "at most 64"},
		{"bad firmware", func(r *repo) {
			r.raw("acme", "a", "rp", "disk0.raw", gib)
			r.manifestEdited("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.raw", Format: kinds.Raw, VirtualSize: gib}}}, `"firmware":"bios"`, `"firmware":"coreboot"`)
		}, "firmware"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			tt.build(r)
			rps, _, err := (&Repository{Root: r.root}).Scan()
			if err != nil {
				t.Fatal(err)
			}
			var got *RecoveryPoint
			for i := range rps {
				if rps[i].ID == "rp" {
					got = &rps[i]
				}
			}
			if got == nil {
				t.Fatalf("recovery point rp not reported at all: %+v", rps)
			}
			if got.Valid {
				t.Fatal("a hostile recovery point was accepted")
			}
			if !strings.Contains(got.Reason, tt.want) {
				t.Fatalf("reason %q does not say %q", got.Reason, tt.want)
			}
		})
	}
}

func TestScanSkipsDirectoriesItCannotName(t *testing.T) {
	r := newRepo(t)
	r.full("acme", "a", "ok", gib)
	if err := os.MkdirAll(filepath.Join(r.root, "Not A Tenant", "a", "rp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r.root, "acme", "a", "bad name!"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Work in progress (a backup job writing) is passed over, not reported.
	for _, hidden := range []string{".staging/a/rp", "acme/.x/rp", "acme/a/.partial-rp2"} {
		if err := os.MkdirAll(filepath.Join(r.root, hidden), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rps, skipped, err := (&Repository{Root: r.root}).Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(rps) != 1 || !rps[0].Valid || len(skipped) != 2 {
		t.Fatalf("rps %+v skipped %+v", rps, skipped)
	}
}

func TestNothingIsWritten(t *testing.T) {
	r := newRepo(t)
	r.full("acme", "a", "rp", gib)
	path := filepath.Join(r.root, "acme/a/rp/disk0.raw")
	before, _ := os.Stat(path)
	if _, _, err := (&Repository{Root: r.root}).Scan(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() || after.Size() != before.Size() {
		t.Fatal("the scan changed a recovery point file")
	}
}

// A backup job's incremental of a two-disk guest: both disks sit on the
// same recovery point, which is not a loop.
func TestTwoDisksOnTheSameBackingRecoveryPointAreValid(t *testing.T) {
	r := newRepo(t)
	r.raw("acme", "web-01", "full", "vda.raw", gib)
	r.raw("acme", "web-01", "full", "vdb.raw", gib)
	r.manifest("acme", "web-01", "full", Manifest{Disks: []Disk{
		{Name: "vda", File: "vda.raw", Format: kinds.Raw, VirtualSize: gib}, {Name: "vdb", File: "vdb.raw", Format: kinds.Raw, VirtualSize: gib}}})
	var disks []Disk
	for _, d := range []string{"vda", "vdb"} {
		writeQCOW2(t, filepath.Join(r.dir("acme", "web-01", "inc"), d+".qcow2"), qcow2Spec{size: gib, backing: "../full/" + d + ".raw", backingFormat: "raw"})
		disks = append(disks, Disk{Name: d, File: d + ".qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "full"})
	}
	r.manifest("acme", "web-01", "inc", Manifest{Disks: disks, Checkpoint: "restored-s2"})
	rp := (&Repository{Root: r.root}).Inspect("acme", "web-01", "inc")
	if !rp.Valid || len(rp.Disks) != 2 || rp.Manifest.Checkpoint != "restored-s2" {
		t.Fatalf("inc: valid=%v %s %+v", rp.Valid, rp.Reason, rp.Disks)
	}
}

// The repository resolves a disk's whole backing chain once, at the scan:
// a restore of an incremental gets every layer, top first, with its format.
func TestScanResolvesTheWholeBackingChain(t *testing.T) {
	r := newRepo(t)
	r.raw("acme", "web-01", "full", "disk0.raw", gib)
	r.manifest("acme", "web-01", "full", Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.raw", Format: kinds.Raw, VirtualSize: gib}}})
	writeQCOW2(t, filepath.Join(r.dir("acme", "web-01", "inc1"), "disk0.qcow2"), qcow2Spec{size: gib, backing: "../full/disk0.raw", backingFormat: "raw"})
	r.manifest("acme", "web-01", "inc1", Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "full"}}})
	writeQCOW2(t, filepath.Join(r.dir("acme", "web-01", "inc2"), "disk0.qcow2"), qcow2Spec{size: gib, backing: "../inc1/disk0.qcow2", backingFormat: "qcow2"})
	r.manifest("acme", "web-01", "inc2", Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.qcow2", Format: kinds.QCOW2, VirtualSize: gib, Backing: "inc1"}}})
	found, _, err := (&Repository{Root: r.root}).Scan()
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(found)
	rp, ok := ix.Lookup("inc2")
	if !ok || !rp.Valid {
		t.Fatalf("inc2: %v %s", ok, rp.Reason)
	}
	base := filepath.Join(r.root, "acme", "web-01")
	want := []Layer{
		{Path: filepath.Join(base, "inc2", "disk0.qcow2"), Format: kinds.QCOW2},
		{Path: filepath.Join(base, "inc1", "disk0.qcow2"), Format: kinds.QCOW2},
		{Path: filepath.Join(base, "full", "disk0.raw"), Format: kinds.Raw},
	}
	if diff := cmp.Diff(want, rp.Disks[0].Chain); diff != "" {
		t.Fatalf("chain (-want +got):\n%s", diff)
	}
	if _, ok := ix.Lookup("nope"); ok || len(ix.All()) != 3 {
		t.Fatalf("index: %d recovery points", len(ix.All()))
	}
}

// Some hostile shapes are not refused but handled: a raw disk is never
// probed, so a LUKS header (or a qcow2 one) at its start is the guest's
// data, read as raw bytes (a guest may encrypt its own disk).
func TestARawDiskIsNeverProbedWhateverItStartsWith(t *testing.T) {
	for name, head := range map[string][]byte{
		"LUKS":                     append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 4088)...),
		"qcow2 naming /etc/shadow": qcow2Bytes(qcow2Spec{size: gib, backing: "/etc/shadow"}),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRepo(t)
			path := filepath.Join(r.dir("acme", "a", "rp"), "d.raw")
			if err := os.WriteFile(path, head, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, gib); err != nil {
				t.Fatal(err)
			}
			r.manifest("acme", "a", "rp", Manifest{Disks: []Disk{{Name: "d", File: "d.raw", Format: kinds.Raw, VirtualSize: gib}}})
			rps, _, err := (&Repository{Root: r.root}).Scan()
			if err != nil || len(rps) != 1 || !rps[0].Valid {
				t.Fatalf("%v %+v", err, rps)
			}
			if d := rps[0].Disks[0]; d.Format != kinds.Raw || d.BackingPath != "" {
				t.Fatalf("a raw disk was read as something else: %+v", d)
			}
		})
	}
}
