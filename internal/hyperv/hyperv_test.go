package hyperv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/storage"
)

// transcript is a Runner that answers each command with a recorded output
// (testdata/), and keeps every script it was given.
type transcript struct {
	t    *testing.T
	disk string
	mu   sync.Mutex
	// answer names the testdata file for a command and its parameters.
	answer func(cmd string, params map[string]any) string
	calls  []recorded
}

type recorded struct {
	cmd    string
	params map[string]any
	script string
}

func (r *transcript) Run(_ context.Context, s string) ([]byte, error) {
	cmd := CommandName(s)
	var params map[string]any
	if err := Params(s, &params); err != nil {
		r.t.Fatalf("%s: %v", cmd, err)
	}
	r.mu.Lock()
	r.calls = append(r.calls, recorded{cmd, params, s})
	r.mu.Unlock()
	name := r.answer(cmd, params)
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		r.t.Fatalf("no transcript %s for %s", name, cmd)
	}
	b = bytes.ReplaceAll(b, []byte("{{DISK}}"), []byte(strings.ReplaceAll(r.disk, `\`, `\\`)))
	if bytes.Contains(b, []byte(`"error"`)) {
		return b, errors.New("exit status 1")
	}
	return b, nil
}

func (r *transcript) called(cmd string) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, c := range r.calls {
		if c.cmd == cmd {
			out = append(out, c)
		}
	}
	return out
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// A name can never become code: parameters travel as base64 JSON.
func TestParametersAreDataNeverCode(t *testing.T) {
	evil := `x'; Remove-Item -Recurse C:\ ; $('`
	s, err := script("new-vm", cmdNewVM, map[string]any{"Name": evil})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "Remove-Item -Recurse C:") {
		t.Fatal("the parameter appears in the script's code")
	}
	var back map[string]any
	if err := Params(s, &back); err != nil || back["Name"] != evil || CommandName(s) != "new-vm" {
		t.Fatalf("%v %v %q", back, err, CommandName(s))
	}
}

func TestPowerShellErrorsAreTyped(t *testing.T) {
	r := &transcript{t: t, answer: func(string, map[string]any) string { return "vm-not-found.json" }}
	err := call(context.Background(), r, "vms", cmdVMs, struct{}{}, nil)
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, ErrNotFound) || pe.ID != "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM" {
		t.Fatalf("%v", err)
	}
	junk := runnerFunc(func(context.Context, string) ([]byte, error) { return []byte("WARNING: profile\n"), nil })
	if err := call(context.Background(), junk, "vms", cmdVMs, struct{}{}, nil); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("an answer that is not JSON: %v", err)
	}
	dead := runnerFunc(func(context.Context, string) ([]byte, error) { return nil, errors.New("powershell.exe: not found") })
	if err := call(context.Background(), dead, "host", cmdHost, struct{}{}, nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("no PowerShell: %v", err)
	}
}

type runnerFunc func(context.Context, string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, s string) ([]byte, error) { return f(ctx, s) }

func newHost(t *testing.T, r *transcript) *Host {
	t.Helper()
	work, err := os.MkdirTemp("", "hv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	h, err := Open(context.Background(), Config{HostID: "hv-01", WorkDir: work, Runner: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// The host's size and VMs, from Get-VMHost and Get-VM: restore VMs are
// never guests, a single VM (PowerShell's unwrapped answer) is a list of
// one.
func TestTheHostAndItsVMsFromRecordedOutput(t *testing.T) {
	file := "vms.json"
	r := &transcript{t: t, disk: `C:\VMs\sql-01.vhdx`, answer: func(cmd string, _ map[string]any) string {
		if cmd == "host" {
			return "host.json"
		}
		return file
	}}
	h := newHost(t, r)
	size, err := h.Size(context.Background())
	if err != nil || size.CPUs != 32 || size.MemoryMiB != 256<<10 {
		t.Fatalf("%+v %v", size, err)
	}
	ds, err := h.Inventory(context.Background())
	if err != nil || len(ds) != 2 {
		t.Fatalf("%+v %v", ds, err)
	}
	if d := ds[0]; d.UUID != "5f1e7c3a-2b4d-4e8f-9a1b-0c2d3e4f5a6b" || d.Name != "sql-01" || !d.Running || d.Disks[0] != "scsi0-0" {
		t.Fatalf("%+v", d)
	}
	if d := ds[1]; d.Running || d.Disks[0] != "ide0-1" {
		t.Fatalf("%+v", d)
	}
	owned, err := h.Owned(context.Background())
	if err != nil || len(owned) != 1 || owned[0].ID != "01a2" || !owned[0].Running {
		t.Fatalf("owned %+v %v", owned, err)
	}
	file = "vms-one.json"
	if ds, err := h.Inventory(context.Background()); err != nil || len(ds) != 1 {
		t.Fatalf("one VM: %+v %v", ds, err)
	}
}

// vhdxDisk makes a 96 MiB dynamic VHDX with data at 0, 1 MiB, 32 MiB and
// 95 MiB, and returns it and its raw conversion by qemu-img.
func vhdxDisk(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "sql-01.vhdx")
	run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=1M", img, "96M")
	run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 64k", "-c", "write -P 0x22 1M 1M", "-c", "write -P 0x33 32M 2M", "-c", "write -P 0x44 95M 1M", img)
	raw := filepath.Join(dir, "raw")
	run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, raw)
	b, _ := os.ReadFile(raw)
	return img, b
}

func readExport(t *testing.T, d hypervisor.SnapshotDisk) []byte {
	t.Helper()
	tg, err := nbd.ParseURI(d.URI)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, tg.Network, tg.Address, nbd.Options{Export: tg.Export})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := make([]byte, c.Size())
	if _, err := c.ReadAt(out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

// The backup of a Hyper-V guest through recorded PowerShell and a real
// VHDX: the checkpoint's disk is served as NBD byte for byte as qemu-img
// reads it; a FULL lists the allocated blocks; a completed backup's
// reference point gives the next INCREMENTAL its RCT ids, and RCT's pages
// are its extents; RCT refusing gives a FULL with the reason; a failed
// quiesce is said; an incomplete backup's checkpoint is removed.
func TestAHyperVGuestIsBackedUpThroughRecordedPowerShell(t *testing.T) {
	disk, want := vhdxDisk(t)
	checkpoint, changes := "checkpoint.json", ""
	r := &transcript{t: t, disk: disk, answer: func(cmd string, p map[string]any) string {
		switch cmd {
		case "host":
			return "host.json"
		case "vms":
			return "vms-one.json"
		case "checkpoint":
			return checkpoint
		case "reference":
			return "reference.json"
		case "changes":
			if changes != "" {
				return changes
			}
			return fmt.Sprintf("changes-%d.json", int64(p["Offset"].(float64)))
		}
		return "ok.json"
	}}
	h := newHost(t, r)
	ctx := context.Background()
	const uuid = "5f1e7c3a-2b4d-4e8f-9a1b-0c2d3e4f5a6b"
	s1, err := h.TakeSnapshot(ctx, hypervisor.SnapshotSpec{ID: "s1", Guest: "sql-01", GuestUUID: uuid, Quiesce: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Quiesced || s1.Incremental || len(s1.Disks) != 1 || s1.Disks[0].Name != "scsi0-0" || s1.Disks[0].Size != 96<<20 {
		t.Fatalf("%+v", s1)
	}
	if got := readExport(t, s1.Disks[0]); !bytes.Equal(got, want) {
		t.Fatal("the export differs from qemu-img's reading of the VHDX")
	}
	page, err := h.ChangedExtents(ctx, s1, "scsi0-0", 0, 100)
	if err != nil || len(page.Extents) != 3 || page.Extents[0] != (hypervisor.Extent{Offset: 0, Length: 2 << 20}) {
		t.Fatalf("the FULL's extents: %+v %v", page, err)
	}
	if c := r.called("checkpoint"); len(c) != 1 || c[0].params["Quiesce"] != true || c[0].params["Name"] != "restored-s1" || c[0].params["VMId"] != "5F1E7C3A-2B4D-4E8F-9A1B-0C2D3E4F5A6B" {
		t.Fatalf("the checkpoint call: %+v", c)
	}
	if err := h.ReleaseSnapshot(ctx, hypervisor.ReleaseSpec{ID: "s1", Guest: "sql-01", GuestUUID: uuid, Completed: true}); err != nil {
		t.Fatal(err)
	}
	if len(r.called("reference")) != 1 || len(r.called("remove-checkpoint")) != 0 {
		t.Fatal("a completed backup's checkpoint did not become a reference point")
	}

	// The INCREMENTAL: RCT's two pages.
	base := &hypervisor.SnapshotBase{Checkpoint: "restored-s1", Sizes: map[string]int64{"scsi0-0": 96 << 20}}
	s2, err := h.TakeSnapshot(ctx, hypervisor.SnapshotSpec{ID: "s2", Guest: "sql-01", GuestUUID: uuid, Incremental: true, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Incremental || s2.BaseCheckpoint != "restored-s1" {
		t.Fatalf("%+v", s2)
	}
	page, _ = h.ChangedExtents(ctx, s2, "scsi0-0", 0, 100)
	wantExt := []hypervisor.Extent{{Offset: 1 << 20, Length: 1 << 20}, {Offset: 32 << 20, Length: 2 << 20}, {Offset: 95 << 20, Length: 1 << 20}}
	if fmt.Sprint(page.Extents) != fmt.Sprint(wantExt) {
		t.Fatalf("the INCREMENTAL's extents %+v, want %+v", page.Extents, wantExt)
	}
	ch := r.called("changes")
	if len(ch) != 2 || ch[0].params["Since"] != "rctX:c1e4f2a8:0a55:4f62:b0b1:9a2c57e4d3f1:00000001" || ch[1].params["Offset"] != float64(50331648) {
		t.Fatalf("the RCT queries: %+v", ch)
	}
	// Not completed: the checkpoint goes.
	if err := h.ReleaseSnapshot(ctx, hypervisor.ReleaseSpec{ID: "s2", Guest: "sql-01", GuestUUID: uuid}); err != nil {
		t.Fatal(err)
	}
	if len(r.called("remove-checkpoint")) != 1 {
		t.Fatal("an incomplete backup's checkpoint was kept")
	}

	// RCT refuses; the guest's VSS fails: a FULL, crash-consistent, both said.
	changes, checkpoint = "changes-refused.json", "checkpoint-crash.json"
	s3, err := h.TakeSnapshot(ctx, hypervisor.SnapshotSpec{ID: "s3", Guest: "sql-01", GuestUUID: uuid, Quiesce: true, Incremental: true, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Incremental || !strings.Contains(s3.KindReason, "Resilient Change Tracking does not answer") || !strings.Contains(s3.KindReason, "32773") ||
		s3.Quiesced || !strings.Contains(s3.ConsistencyReason, "Volume Shadow Copy") {
		t.Fatalf("%+v", s3)
	}
	// A base the host has no reference point of.
	s4, err := h.TakeSnapshot(ctx, hypervisor.SnapshotSpec{ID: "s4", Guest: "sql-01", GuestUUID: uuid, Incremental: true, Base: &hypervisor.SnapshotBase{Checkpoint: "restored-other"}})
	if err != nil || s4.Incremental || !strings.Contains(s4.KindReason, "not of restored-other") {
		t.Fatalf("%+v %v", s4, err)
	}
}

// A restore onto Hyper-V: the recovery point's qcow2 chain converted to a
// dynamic VHDX that holds exactly its data, a generation 2 VM for UEFI
// with the restore's CPUs and memory, started, and removed.
func TestARestoreOntoHyperVConvertsTheChainAndMakesTheVM(t *testing.T) {
	dir := t.TempDir()
	base, inc := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "inc.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "64M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 0 1M", base)
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", inc)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0xbb 8M 1M", inc)
	r := &transcript{t: t, answer: func(cmd string, _ map[string]any) string {
		switch cmd {
		case "host":
			return "host.json"
		case "new-vm":
			return "new-vm.json"
		}
		return "ok.json"
	}}
	h := newHost(t, r)
	spec := hypervisor.RestoreSpec{ID: "r1", VCPUs: 2, MemoryMiB: 2048, Firmware: kinds.UEFI, OS: kinds.Windows,
		Disks: []hypervisor.Disk{{Name: "disk0", Chain: []storage.Layer{{Path: inc, Format: kinds.QCOW2}, {Path: base, Format: kinds.QCOW2}}}}}
	if err := h.Prepare(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	nv := r.called("new-vm")
	if len(nv) != 1 {
		t.Fatal("no New-VM")
	}
	p := nv[0].params
	if p["Generation"] != float64(2) || p["MemoryBytes"] != float64(2048<<20) || p["CPUs"] != float64(2) || p["Name"] != "restored-r1" || p["Notes"] != "Restored restore r1 of host hv-01" {
		t.Fatalf("New-VM parameters: %v", p)
	}
	disks := p["Disks"].([]any)
	im, f, err := openVHDX(disks[0].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, im.Size())
	if _, err := im.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "want.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", inc, raw)
	want, _ := os.ReadFile(raw)
	if !bytes.Equal(got, want) {
		t.Fatal("the converted VHDX differs from the recovery point")
	}
	if err := h.Boot(context.Background(), "r1"); err != nil || len(r.called("start-vm")) != 1 {
		t.Fatalf("boot: %v", err)
	}
	if err := h.Teardown(context.Background(), "r1"); err != nil {
		t.Fatal(err)
	}
	rm := r.called("remove-vm")
	if len(rm) < 2 || rm[len(rm)-1].params["Name"] != "restored-r1" {
		t.Fatalf("remove-vm calls: %+v", rm)
	}
	// A network is refused before anything is made.
	if err := h.Prepare(context.Background(), hypervisor.RestoreSpec{ID: "r2", Network: kinds.Isolated}); err == nil || !strings.Contains(err.Error(), "no network yet") {
		t.Fatalf("a restore with a network: %v", err)
	}
}
