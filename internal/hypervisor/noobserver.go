package hypervisor

import (
	"context"
	"encoding/json"
	"fmt"
)

// NoObserver is the Observer of a driver that has nothing of a restore VM
// to watch (no screen, serial console or guest agent it can reach: the
// VMware and Hyper-V drivers today): every call is ErrUnsupported, naming
// the driver. Drivers embed it; their capabilities say so too, so the
// agent never calls it.
type NoObserver struct{ Driver string }

func (n NoObserver) err() error {
	return fmt.Errorf("watching restore VMs: the %s driver %w", n.Driver, ErrUnsupported)
}

// Screenshot implements Observer.
func (n NoObserver) Screenshot(context.Context, string) (Screen, error) { return Screen{}, n.err() }

// TextScreen implements Observer.
func (n NoObserver) TextScreen(context.Context, string) ([]string, error) { return nil, n.err() }

// Serial implements Observer.
func (n NoObserver) Serial(context.Context, string) ([]byte, error) { return nil, n.err() }

// GuestPing implements Observer.
func (n NoObserver) GuestPing(context.Context, string) error { return n.err() }

// GuestCommand implements Observer.
func (n NoObserver) GuestCommand(context.Context, string, string, any) (json.RawMessage, error) {
	return nil, n.err()
}

// GuestExec implements Observer.
func (n NoObserver) GuestExec(context.Context, string, string, ...string) (ExecResult, error) {
	return ExecResult{}, n.err()
}

// Console implements Observer.
func (n NoObserver) Console(context.Context, string) (ConsoleEndpoint, error) {
	return ConsoleEndpoint{}, n.err()
}
