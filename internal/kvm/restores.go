package kvm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/restored/restored/internal/confine"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/netiso"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/vmspec"
)

// Prepare implements hypervisor.Restorer: a work dir with a qcow2 overlay
// per disk (the recovery point's files are only ever read), the isolated
// bridge when asked, and the domain defined in libvirt, not started.
func (h *Host) Prepare(ctx context.Context, spec hypervisor.RestoreSpec) error {
	// Anything left of this restore is from an interrupted attempt.
	if err := h.Teardown(ctx, spec.ID); err != nil {
		return fmt.Errorf("clear an earlier attempt: %w", err)
	}
	rv := revert.New()
	defer rv.Fail()
	dir := h.restoreDir(spec.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rv.Add(func() { _ = os.RemoveAll(dir) })
	// QEMU runs as libvirt-qemu and must reach the overlays.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	var disks []vmspec.DiskInput
	for _, d := range spec.Disks {
		if len(d.Chain) == 0 {
			return fmt.Errorf("disk %s has no backing chain", d.Name)
		}
		if spec.Progress != nil {
			spec.Progress(hypervisor.Progress{Step: "making the overlay of disk " + d.Name})
		}
		overlay := filepath.Join(dir, d.Name+".qcow2")
		if err := storage.CreateOverlay(ctx, overlay, d.Chain[0].Path, d.Chain[0].Format); err != nil {
			return fmt.Errorf("overlay for disk %s: %w", d.Name, err)
		}
		disks = append(disks, vmspec.DiskInput{Name: d.Name, Overlay: overlay, Chain: d.Chain})
	}
	bridge := spec.Bridge
	if spec.Network == kinds.Isolated {
		bridge = isolatedBridge(spec.ID, spec.Lab)
		if spec.Lab != "" {
			if err := os.WriteFile(h.labFile(spec.ID), []byte(spec.Lab), 0o644); err != nil {
				return err
			}
		}
		h.labs.Lock()
		err := netiso.Ensure(ctx, bridge)
		h.labs.Unlock()
		if err != nil {
			return fmt.Errorf("isolated network: %w", err)
		}
		rv.Add(func() {
			h.labs.Lock()
			defer h.labs.Unlock()
			_ = os.Remove(h.labFile(spec.ID))
			_ = h.releaseNetwork(context.WithoutCancel(ctx), spec.ID, spec.Lab)
		})
	}
	label, err := h.confine(spec, rv)
	if err != nil {
		return err
	}
	pw := make([]byte, 6)
	_, _ = rand.Read(pw)
	dom, err := vmspec.Build(&vmspec.Context{Host: h.facts, In: vmspec.Input{
		RestoreID: spec.ID, Tenant: spec.Tenant, HostID: h.hostID, ExpireAt: spec.ExpireAt, VCPUs: spec.VCPUs, MemoryMiB: spec.MemoryMiB,
		Firmware: spec.Firmware, OS: spec.OS, Disks: disks, Network: spec.Network, Bridge: bridge, LinkDown: spec.LinkDown,
		SerialLog: h.serialPath(spec.ID), VNCPassword: base64.RawURLEncoding.EncodeToString(pw),
		NVRAM: filepath.Join(dir, "nvram.fd"), DACLabel: label,
	}})
	if err != nil {
		return err
	}
	if err := h.drv.Define(ctx, dom); err != nil {
		return err
	}
	rv.Success()
	return nil
}

// Boot implements hypervisor.Restorer.
func (h *Host) Boot(ctx context.Context, id string) error {
	return h.drv.StartDefined(ctx, h.domain(id))
}

// Teardown implements hypervisor.Restorer: the domain (with its NVRAM and
// snapshot metadata), the isolated bridge and the work dir.
func (h *Host) Teardown(ctx context.Context, id string) error {
	if err := h.drv.Destroy(ctx, h.domain(id)); err != nil {
		return err
	}
	if err := h.stopExport(id); err != nil {
		return err
	}
	// The restore's isolated bridge, or its lab's when it was the last one:
	// one teardown at a time decides, after its work dir is gone.
	if err := h.unconfine(id); err != nil {
		return err
	}
	h.labs.Lock()
	defer h.labs.Unlock()
	lab := h.labOf(id)
	if err := os.RemoveAll(h.restoreDir(id)); err != nil {
		return err
	}
	return h.releaseNetwork(ctx, id, lab)
}

// Owned implements hypervisor.Restorer: this host's Restored domains (by
// their metadata: another agent's on a shared libvirtd are not listed) and
// the work dirs of restores without one.
func (h *Host) Owned(ctx context.Context) ([]hypervisor.Owned, error) {
	doms, err := h.drv.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Owned
	seen := map[string]bool{}
	for _, d := range doms {
		if d.Meta.HostID != h.hostID {
			continue
		}
		seen[d.Meta.RestoreID] = true
		out = append(out, hypervisor.Owned{ID: d.Meta.RestoreID, VM: true, Running: d.Running})
	}
	entries, err := os.ReadDir(h.restoresDir())
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() && !seen[e.Name()] {
			// An EXPORT restore has no domain: it runs while its daemon
			// serves; an IMAGE restore once its files are all made.
			out = append(out, hypervisor.Owned{ID: e.Name(), Running: h.exportServing(e.Name()) || h.images(e.Name()) != nil})
		}
	}
	return out, nil
}

// confine gives the restore a uid of its own, granted read access to its
// recovery point's chain and nothing else, kept in its work dir for the
// teardown; it returns the domain's DAC label.
func (h *Host) confine(spec hypervisor.RestoreSpec, rv *revert.Reverter) (string, error) {
	if h.repository == "" {
		return "", nil
	}
	taken := map[uint32]bool{}
	h.preparing.Range(func(_, v any) bool { taken[v.(uint32)] = true; return true })
	id := confine.Choose(spec.ID, h.qemuGroup, taken)
	h.preparing.Store(spec.ID, id.UID)
	defer h.preparing.Delete(spec.ID)
	var files []string
	for _, d := range spec.Disks {
		for _, c := range d.Chain {
			files = append(files, c.Path)
		}
	}
	// What was granted is saved even when a grant failed half-way, so the
	// teardown takes it back.
	grantErr := confine.Grant(&id, h.repository, files)
	if err := confine.Save(h.confinePath(spec.ID), id); err != nil {
		_ = confine.Revoke(id)
		return "", err
	}
	rv.Add(func() { _ = confine.Revoke(id) })
	if grantErr != nil {
		return "", fmt.Errorf("give the restore its recovery point: %w", grantErr)
	}
	return id.Label(), nil
}

// unconfine takes back what the restore's uid was granted.
func (h *Host) unconfine(id string) error {
	ident, ok, err := confine.Load(h.confinePath(id))
	if err != nil || !ok {
		return err
	}
	if err := confine.Revoke(ident); err != nil {
		return fmt.Errorf("take back the restore's recovery point: %w", err)
	}
	return nil
}

// freshRestoreDir clears what an earlier attempt of a restore left and
// makes its work dir, torn down again (with everything of the restore)
// when rv fails: the start of every restore kind without a domain.
func (h *Host) freshRestoreDir(ctx context.Context, id string, rv *revert.Reverter) (string, error) {
	if err := h.Teardown(ctx, id); err != nil {
		return "", fmt.Errorf("clear an earlier attempt: %w", err)
	}
	dir := h.restoreDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	rv.Add(func() { _ = h.Teardown(context.WithoutCancel(ctx), id) })
	return dir, nil
}
