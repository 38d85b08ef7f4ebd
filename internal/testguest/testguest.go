// Package testguest runs a protected guest for tests and benchmarks of
// backup jobs: the test image on vda and a blank data disk on vdb, as a
// libvirt domain with its guest agent, outside any restore (its metadata
// names a host no agent serves, so agents leave it alone).
package testguest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/vmspec"
)

// Guest is a running guest.
type Guest struct {
	Name string
	dir  string
	drv  *kvm.Driver
}

// Start defines and starts the guest from image (the test image), with a
// blank data disk of dataBytes, its files in a new directory under parent
// (QEMU must be able to reach it), and waits until its guest agent answers.
func Start(ctx context.Context, drv *kvm.Driver, image, parent string, dataBytes int64) (*Guest, error) {
	dir, err := os.MkdirTemp(parent, "restored-guest-")
	if err != nil {
		return nil, err
	}
	g := &Guest{dir: dir, drv: drv}
	fail := func(err error) (*Guest, error) { g.Close(context.Background()); return nil, err }
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	blank := filepath.Join(dir, "data.raw")
	if err := os.WriteFile(blank, nil, 0o644); err != nil {
		return fail(err)
	}
	if err := os.Truncate(blank, dataBytes); err != nil {
		return fail(err)
	}
	var disks []vmspec.DiskInput
	for i, base := range []string{image, blank} {
		overlay := filepath.Join(dir, fmt.Sprintf("disk%d.qcow2", i))
		if err := storage.CreateOverlay(ctx, overlay, base, kinds.Raw); err != nil {
			return fail(err)
		}
		disks = append(disks, vmspec.DiskInput{Name: fmt.Sprintf("disk%d", i), Overlay: overlay, Chain: []vmspec.ChainElement{{Path: base, Format: kinds.Raw}}})
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	dom, err := vmspec.Build(&vmspec.Context{
		In: vmspec.Input{
			RestoreID: "guest-" + hex.EncodeToString(id[:]), Tenant: "test", HostID: "protected-guest", ExpireAt: time.Now().Add(24 * time.Hour),
			VCPUs: 1, MemoryMiB: 128, Firmware: kinds.BIOS, OS: kinds.Linux, Network: kinds.NoNetwork,
			SerialLog: filepath.Join(dir, "serial.log"), VNCPassword: "guest-pw", Disks: disks,
		},
		Host: vmspec.HostFacts{Accelerator: "tcg"},
	})
	if err != nil {
		return fail(err)
	}
	// A protected guest is the hoster's VM, not a restore: no Restored
	// metadata (its host reports it in its inventory), a name of its own.
	dom.Metadata = nil
	dom.Name = "protected-" + hex.EncodeToString(id[:])
	g.Name = dom.Name
	if err := drv.Start(ctx, dom); err != nil {
		return fail(err)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := drv.GuestPing(pctx, g.Name)
		cancel()
		if err == nil {
			return g, nil
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("the guest's agent never answered: %v", err))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Close destroys the guest (ending any backup job of owner first is the
// caller's business) and removes its files.
func (g *Guest) Close(ctx context.Context) error {
	var err error
	if g.Name != "" {
		err = g.drv.Destroy(ctx, g.Name)
	}
	_ = os.RemoveAll(g.dir)
	return err
}

// Sh runs a shell command in the guest and returns its stdout.
func (g *Guest) Sh(ctx context.Context, script string) (string, error) {
	res, err := g.drv.GuestExec(ctx, g.Name, "/bin/sh", "-c", script)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 || res.Signal != 0 {
		return "", fmt.Errorf("%q in the guest: exit %d signal %d: %s", script, res.ExitCode, res.Signal, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// Block is the unit the guest writes in: the dirty bitmaps' granularity.
const Block = 64 << 10

// Write writes count random blocks to the data disk at block seek, straight
// to the device, and returns their md5.
func (g *Guest) Write(ctx context.Context, seek, count int) (string, error) {
	return g.Sh(ctx, fmt.Sprintf("dd if=/dev/urandom of=/dev/vdb bs=%d seek=%d count=%d conv=fsync 2>/dev/null && sync && "+
		"dd if=/dev/vdb bs=%d skip=%d count=%d 2>/dev/null | md5sum", Block, seek, count, Block, seek, count))
}

// Read returns the md5 of count blocks of the data disk at block skip, in
// the guest named domain (the guest or a restore of it).
func Read(ctx context.Context, drv *kvm.Driver, domain string, skip, count int) (string, error) {
	g := &Guest{Name: domain, drv: drv}
	return g.Sh(ctx, fmt.Sprintf("dd if=/dev/vdb bs=%d skip=%d count=%d 2>/dev/null | md5sum", Block, skip, count))
}

// ChangedBlocks counts, per disk, the Block-sized blocks that differ
// between two recovery points (directories holding <disk>.qcow2): what the
// guest really changed between them, measured without any dirty bitmap.
func ChangedBlocks(ctx context.Context, dirA, dirB string, disks ...string) (map[string]int, error) {
	tmp, err := os.MkdirTemp("", "restored-changed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := map[string]int{}
	for _, d := range disks {
		var imgs [2][]byte
		for i, dir := range []string{dirA, dirB} {
			raw := filepath.Join(tmp, fmt.Sprintf("%s-%d.raw", d, i))
			if o, err := exec.CommandContext(ctx, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(dir, d+".qcow2"), raw).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("qemu-img convert: %v %s", err, o)
			}
			if imgs[i], err = os.ReadFile(raw); err != nil {
				return nil, err
			}
		}
		if len(imgs[0]) != len(imgs[1]) {
			return nil, fmt.Errorf("disk %s changed size: %d vs %d", d, len(imgs[0]), len(imgs[1]))
		}
		for off := 0; off < len(imgs[0]); off += Block {
			end := min(off+Block, len(imgs[0]))
			if !bytes.Equal(imgs[0][off:end], imgs[1][off:end]) {
				out[d]++
			}
		}
	}
	return out, nil
}
