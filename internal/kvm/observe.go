package kvm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/restored/restored/internal/hypervisor"
)

// noVM marks a missing domain as hypervisor.ErrNoVM.
func noVM(err error) error {
	if err != nil && IsNotFound(err) {
		return fmt.Errorf("%w: %v", hypervisor.ErrNoVM, err)
	}
	return err
}

// Screenshot implements hypervisor.Observer.
func (h *Host) Screenshot(ctx context.Context, id string) (hypervisor.Screen, error) {
	img, raw, err := h.drv.Screenshot(ctx, h.domain(id))
	return hypervisor.Screen{Image: img, Raw: raw}, noVM(err)
}

// TextScreen implements hypervisor.Observer (VGA text memory).
func (h *Host) TextScreen(ctx context.Context, id string) ([]string, error) {
	return h.drv.TextScreen(ctx, h.domain(id))
}

// Serial implements hypervisor.Observer: the log virtlogd writes.
func (h *Host) Serial(_ context.Context, id string) ([]byte, error) {
	return os.ReadFile(h.serialPath(id))
}

// GuestPing implements hypervisor.Observer.
func (h *Host) GuestPing(ctx context.Context, id string) error {
	return h.drv.GuestPing(ctx, h.domain(id))
}

// GuestCommand implements hypervisor.Observer; the guest agent gets what is
// left of ctx's deadline to answer (1 to 60 s).
func (h *Host) GuestCommand(ctx context.Context, id, command string, args any) (json.RawMessage, error) {
	timeout := int32(5)
	if dl, ok := ctx.Deadline(); ok {
		timeout = int32(min(max(time.Until(dl)/time.Second, 1), 60))
	}
	return h.drv.GuestCommand(ctx, h.domain(id), command, args, timeout)
}

// GuestExec implements hypervisor.Observer.
func (h *Host) GuestExec(ctx context.Context, id, path string, args ...string) (hypervisor.ExecResult, error) {
	return h.drv.GuestExec(ctx, h.domain(id), path, args...)
}

// Console implements hypervisor.Observer: the domain's VNC server (the
// unix socket libvirt made for it) and its password.
func (h *Host) Console(ctx context.Context, id string) (hypervisor.ConsoleEndpoint, error) {
	ep, err := h.drv.VNC(ctx, h.domain(id))
	return ep, noVM(err)
}
