package kvm

import (
	"context"
	"fmt"

	"github.com/digitalocean/go-libvirt"
	"github.com/restored/restored/internal/diskfree"
	"github.com/restored/restored/internal/hypervisor"
)

var _ hypervisor.OverlayGuard = (*Host)(nil)

// OverlayBytes implements hypervisor.OverlayGuard: the space the files of
// the restore's dir take on disk (its overlays, NVRAM and serial log).
func (h *Host) OverlayBytes(_ context.Context, restoreID string) (uint64, error) {
	n, err := diskfree.DirBytes(h.restoreDir(restoreID))
	if err != nil {
		return 0, fmt.Errorf("measure the files of restore %s: %w", restoreID, err)
	}
	return n, nil
}

// PauseVM implements hypervisor.OverlayGuard: the VM stops running and
// keeps its memory and disks (libvirt's suspend).
func (h *Host) PauseVM(ctx context.Context, restoreID string) error {
	name := h.domain(restoreID)
	dom, err := h.drv.lookup(ctx, name)
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	_, err = call(ctx, h.drv, "pause "+name, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainSuspend(dom)
	})
	if err != nil && !isCode(err, libvirt.ErrOperationInvalid) { // paused already
		return fmt.Errorf("pause domain %s: %w", name, err)
	}
	return nil
}
