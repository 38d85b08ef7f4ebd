package kvm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// runningDomain starts the test image (over a qcow2 overlay) under libvirt
// and removes it, with its checkpoints, when the test ends.
func runningDomain(t *testing.T, ctx context.Context, d *kvm.Driver) (name, overlay, img string) {
	t.Helper()
	img, err := testimage.Path("../..")
	if err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp("", "restored-kvm-backup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	overlay = filepath.Join(work, "disk0.qcow2")
	if err := storage.CreateOverlay(ctx, overlay, img, kinds.Raw); err != nil {
		t.Fatal(err)
	}
	dom, err := vmspec.Build(&vmspec.Context{
		In: vmspec.Input{
			RestoreID: "kvmbackup-" + strings.TrimPrefix(filepath.Base(work), "restored-kvm-backup-"), Tenant: "acme", HostID: "kvm-driver-test",
			ExpireAt: time.Now().Add(time.Hour), VCPUs: 1, MemoryMiB: 128, Firmware: kinds.BIOS, OS: kinds.Linux,
			Network: kinds.NoNetwork, SerialLog: filepath.Join(work, "serial.log"), VNCPassword: "test-pw",
			Disks: []vmspec.DiskInput{{Name: "disk0", Overlay: overlay, Chain: []vmspec.ChainElement{{Path: img, Format: kinds.Raw}}}},
		},
		Host: vmspec.HostFacts{Accelerator: "tcg"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = d.EndBackup(cctx, "kvm-driver-test", dom.Name)
		if err := d.Destroy(cctx, dom.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := d.Start(ctx, dom); err != nil {
		t.Fatal(err)
	}
	return dom.Name, overlay, img
}

func dialExport(t *testing.T, b *kvm.Backup, disk kvm.BackupDisk, contexts ...string) *nbd.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, "unix", b.Socket, nbd.Options{Export: disk.Export, MetaContexts: contexts})
	if err != nil {
		t.Fatalf("dial the export: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Real libvirtd and QEMU: a pull-mode backup exports the disk over NBD on
// 127.0.0.1 under a secret name, creates a checkpoint, serves the changed
// blocks of an incremental as a dirty bitmap, and falls back to a FULL,
// saying why, whenever the chain is not what was recorded.
func TestBackupExportsTheDiskAndChecksTheChainBeforeAnIncremental(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer d.Close()
	name, overlay, img := runningDomain(t, ctx, d)
	scratch := filepath.Dir(overlay)
	sockets := filepath.Join(scratch, "nbd")
	if err := kvm.QEMUDir(sockets); err != nil {
		t.Fatal(err)
	}

	// 1. An incremental with nothing recorded is a FULL, and says so; a
	// quiesce asked of a guest whose agent is not up yet (it has just been
	// started) gives a crash-consistent snapshot, and says so.
	full, err := d.BeginBackup(ctx, kvm.BackupSpec{Domain: name, ID: "s1", Incremental: true, Quiesce: true, Socket: filepath.Join(sockets, "s1.nbd"), ScratchDir: scratch, Owner: "kvm-driver-test"})
	if err != nil {
		t.Fatal(err)
	}
	if full.Incremental || !strings.Contains(full.KindReason, "no completed backup") || full.Checkpoint != "restored-s1" {
		t.Fatalf("first backup: incremental=%v reason=%q checkpoint=%q", full.Incremental, full.KindReason, full.Checkpoint)
	}
	if full.Quiesced || !strings.Contains(full.ConsistencyReason, "guest agent did not freeze") {
		t.Fatalf("quiesce without a guest agent: quiesced=%v reason=%q", full.Quiesced, full.ConsistencyReason)
	}
	if len(full.Disks) != 1 || full.Disks[0].Name != "vda" || full.Disks[0].Source != overlay || full.Disks[0].Size <= 0 {
		t.Fatalf("disks %+v", full.Disks)
	}
	c := dialExport(t, full, full.Disks[0], nbd.BaseAllocation)
	mbr := make([]byte, 512)
	if _, err := c.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 512)
	f, _ := os.Open(img)
	_, _ = f.ReadAt(want, 0)
	f.Close()
	if !bytes.Equal(mbr, want) || c.Size() != full.Disks[0].Size {
		t.Fatalf("the export's first sector is not the image's (size %d vs %d)", c.Size(), full.Disks[0].Size)
	}
	if _, err := nbd.Dial(ctx, "unix", full.Socket, nbd.Options{Export: "vda"}); !errors.Is(err, nbd.ErrUnknownExport) {
		t.Fatalf("the export answered a guessed name: %v", err)
	}
	c.Close()
	if err := d.EndBackup(ctx, "kvm-driver-test", name); err != nil {
		t.Fatal(err)
	}
	if _, err := nbd.Dial(ctx, "unix", full.Socket, nbd.Options{Export: full.Disks[0].Export}); err == nil {
		t.Fatal("the export still answers after EndBackup")
	}
	base := &kvm.BackupBase{Checkpoint: full.Checkpoint, Sources: map[string]string{"vda": overlay}}

	// 2. The chain is intact: an incremental, with the changes as a bitmap.
	inc, err := d.BeginBackup(ctx, kvm.BackupSpec{Domain: name, ID: "s2", Incremental: true, Base: base, Socket: filepath.Join(sockets, "s2.nbd"), ScratchDir: scratch, Owner: "kvm-driver-test"})
	if err != nil {
		t.Fatal(err)
	}
	if !inc.Incremental || inc.BaseCheckpoint != "restored-s1" || inc.Disks[0].Bitmap == "" {
		t.Fatalf("second backup: %+v", inc)
	}
	c = dialExport(t, inc, inc.Disks[0], inc.Disks[0].Bitmap)
	ext, err := c.BlockStatus(inc.Disks[0].Bitmap, 0, c.Size())
	if err != nil || len(ext) == 0 {
		t.Fatalf("dirty bitmap: %v %v", ext, err)
	}
	c.Close()
	// A second job on the same guest is refused while one runs.
	if _, err := d.BeginBackup(ctx, kvm.BackupSpec{Domain: name, ID: "s3", Socket: filepath.Join(sockets, "s3.nbd"), ScratchDir: scratch, Owner: "kvm-driver-test"}); !errors.Is(err, kvm.ErrBackupRunning) {
		t.Fatal("a second backup job began while one ran")
	}
	// Another agent's restart leaves the job alone; this one's ends it.
	if n, err := d.EndStaleBackups(ctx, "kvm-other-host"); err != nil || n != 0 {
		t.Fatalf("another owner ended %d jobs (%v)", n, err)
	}
	if n, err := d.EndStaleBackups(ctx, "kvm-driver-test"); err != nil || n < 1 {
		t.Fatalf("EndStaleBackups: %d %v", n, err)
	}
	if cps, err := d.Checkpoints(ctx, name); err != nil || strings.Join(cps, ",") != "restored-s1,restored-s2" && strings.Join(cps, ",") != "restored-s2,restored-s1" {
		t.Fatalf("checkpoints %v %v", cps, err)
	}

	// 3. Each way the chain can break gives a FULL with the reason.
	for _, tc := range []struct {
		name  string
		base  *kvm.BackupBase
		setup func()
		want  string
	}{
		{"the disk was swapped", &kvm.BackupBase{Checkpoint: "restored-s2", Sources: map[string]string{"vda": "/elsewhere.qcow2"}}, nil, "disk vda changed since checkpoint restored-s2"},
		{"a disk is new", &kvm.BackupBase{Checkpoint: "restored-s2", Sources: map[string]string{}}, nil, "disk vda is new"},
		{"the checkpoint was deleted behind our back", &kvm.BackupBase{Checkpoint: "restored-s2", Sources: map[string]string{"vda": overlay}},
			func() {
				if err := d.DeleteCheckpoint(ctx, name, "restored-s2"); err != nil {
					t.Fatal(err)
				}
			}, "checkpoint restored-s2, recorded at the last backup, is gone"},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		b, err := d.BeginBackup(ctx, kvm.BackupSpec{Domain: name, ID: "x", Incremental: true, Base: tc.base, Socket: filepath.Join(sockets, "x.nbd"), ScratchDir: scratch, Owner: "kvm-driver-test"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if b.Incremental || !strings.Contains(b.KindReason, tc.want) {
			t.Errorf("%s: incremental=%v reason %q, want a FULL because %q", tc.name, b.Incremental, b.KindReason, tc.want)
		}
		if err := d.EndBackup(ctx, "kvm-driver-test", name); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteCheckpoint(ctx, name, "restored-x"); err != nil {
			t.Fatal(err)
		}
	}
	// A guest registered by UUID is found by it.
	uctx, ucancel := context.WithTimeout(ctx, 30*time.Second)
	defer ucancel()
	xml, err := exec.CommandContext(uctx, "virsh", "-c", "qemu:///system", "domuuid", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	if cps, err := d.Checkpoints(ctx, strings.TrimSpace(string(xml))); err != nil || len(cps) != 1 {
		t.Errorf("checkpoints by UUID: %v %v", cps, err)
	}
	// Bad input changes nothing.
	if _, err := d.BeginBackup(ctx, kvm.BackupSpec{Domain: "restored-no-such-guest", ID: "y", Socket: filepath.Join(sockets, "y.nbd"), ScratchDir: scratch, Owner: "kvm-driver-test"}); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Errorf("unknown guest: %v", err)
	}
	if err := d.DeleteCheckpoint(ctx, name, "someone-elses"); err == nil {
		t.Error("deleted a checkpoint that is not Restored's")
	}
}
