package agent

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reporter is what the agent's parts tell the control plane.
type reporter interface {
	reportRestore(ctx context.Context, req *restorev1.ReportRestoreStatusRequest) error
	reportSnapshot(ctx context.Context, req *restorev1.ReportSnapshotStatusRequest) error
}

// control is the agent's connection to the control plane: the client of
// the current session (swapped when it reconnects). The agent proves who
// it is with its certificate, in the TLS under it.
type control struct {
	log    *slog.Logger
	client atomic.Pointer[restorev1.AgentServiceClient]
}

var _ reporter = (*control)(nil)

func (c *control) use(client restorev1.AgentServiceClient) { c.client.Store(&client) }

func (c *control) current() (restorev1.AgentServiceClient, error) {
	p := c.client.Load()
	if p == nil {
		return nil, errNotConnected
	}
	return *p, nil
}

var errNotConnected = errors.New("not connected to a server")

func (c *control) reportRestore(ctx context.Context, req *restorev1.ReportRestoreStatusRequest) error {
	client, err := c.current()
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_, err = client.ReportRestoreStatus(rctx, req)
	}
	if err != nil {
		c.log.Warn("status report failed", "restore", req.RestoreId, "state", req.State.String(), "err", err)
		return err
	}
	c.log.Info("restore", "id", req.RestoreId, "state", req.State.String(), "reason", req.StateReason)
	return nil
}

func (c *control) reportSnapshot(ctx context.Context, req *restorev1.ReportSnapshotStatusRequest) error {
	client, err := c.current()
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = client.ReportSnapshotStatus(rctx, req)
	}
	if err != nil {
		c.log.Warn("snapshot report failed", "snapshot", req.Snapshot.GetId(), "state", req.Snapshot.GetState().String(), "err", err)
	}
	return err
}

// retry is how a report that cannot be asked for again is retried.
type retry struct {
	attempts int
	// step is the pause after the first attempt; it grows by step.
	step time.Duration
	// outlive: go on after ctx ends (a verdict outlives the restore's
	// cancelled work).
	outlive bool
}

// do runs send until it succeeds, fails for good, or the attempts are used.
func (r retry) do(ctx context.Context, send func() error) {
	for attempt := 1; ; attempt++ {
		err := send()
		if err == nil || attempt >= r.attempts || !retryable(err) || (!r.outlive && ctx.Err() != nil) {
			return
		}
		time.Sleep(time.Duration(attempt) * r.step)
	}
}

// retryable: the server was not reachable or busy; a refusal is final.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated:
		return false
	}
	return true
}

// maxReason is the longest state reason (bytes) the server takes.
const maxReason = 253

// clampReason shortens a state reason to what the server takes, ending it
// with "…" when cut (the whole text stays in the verification's reason).
func clampReason(s string) string {
	// A reason is one line of printable text: a tool's multi-line error
	// is folded (the API refuses control characters).
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxReason {
		return s
	}
	return strings.ToValidUTF8(s[:maxReason-len("…")], "") + "…"
}
