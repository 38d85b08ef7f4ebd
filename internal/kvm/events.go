package kvm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/restored/restored/internal/hypervisor"
)

// The guests' lifecycle: libvirt's lifecycle events on a connection of
// their own (a call that overruns its deadline drops the shared one), so a
// guest whose QEMU dies is known at once, not at the next reconcile pass.

// Lifecycle streams libvirt's domain lifecycle events until ctx ends or
// the connection breaks (the channel closes then).
func (d *Driver) Lifecycle(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error) {
	c, err := d.dial()
	if err != nil {
		return nil, err
	}
	ch, err := c.LifecycleEvents(ctx)
	if err != nil {
		_ = c.Disconnect()
		return nil, fmt.Errorf("subscribe to libvirt's lifecycle events: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = c.Disconnect()
	}()
	return ch, nil
}

// unexpectedStop says why a lifecycle event is a guest that stopped
// without being asked to ("" when it is not one).
func unexpectedStop(ev libvirt.DomainEventLifecycleMsg) string {
	switch {
	case libvirt.DomainEventType(ev.Event) == libvirt.DomainEventCrashed:
		return "the guest crashed (a guest panic, libvirt says)"
	case libvirt.DomainEventType(ev.Event) != libvirt.DomainEventStopped:
		return ""
	case libvirt.DomainEventStoppedDetailType(ev.Detail) == libvirt.DomainEventStoppedFailed:
		return "its QEMU process ended unexpectedly (libvirt: stopped, failed)"
	case libvirt.DomainEventStoppedDetailType(ev.Detail) == libvirt.DomainEventStoppedCrashed:
		return "the guest crashed and its QEMU stopped (libvirt: stopped, crashed)"
	}
	return ""
}

// pausedOnFullDisk says why a lifecycle event is a guest QEMU paused
// because a write met ENOSPC (the disks' error_policy 'enospace'), "" when
// it is not one.
func pausedOnFullDisk(ev libvirt.DomainEventLifecycleMsg) string {
	if libvirt.DomainEventType(ev.Event) == libvirt.DomainEventSuspended &&
		libvirt.DomainEventSuspendedDetailType(ev.Detail) == libvirt.DomainEventSuspendedIoerror {
		return "its host's work dir is full: a write of the guest met ENOSPC and QEMU paused it (nothing it wrote is lost; free space there, or delete the restore)"
	}
	return ""
}

// WatchVMs implements hypervisor.VMWatcher: each restore's VM that stops
// unexpectedly or is paused on a full disk, by its restore id (the
// domain's name under this host's prefix; the agent acts only on restores
// it was assigned).
func (h *Host) WatchVMs(ctx context.Context, on func(hypervisor.VMEvent)) error {
	ch, err := h.drv.Lifecycle(ctx)
	if err != nil {
		return err
	}
	prefix := h.domain("")
	for ev := range ch {
		id, ours := strings.CutPrefix(ev.Dom.Name, prefix)
		if !ours {
			continue
		}
		if why := unexpectedStop(ev); why != "" {
			on(hypervisor.VMEvent{RestoreID: id, Reason: why})
		} else if why := pausedOnFullDisk(ev); why != "" {
			on(hypervisor.VMEvent{RestoreID: id, Reason: why, Paused: true})
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("libvirt's lifecycle event stream ended")
}
