package agent

import (
	"context"
	"errors"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/storage"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func toProto(rp storage.RecoveryPoint) *restorev1.RecoveryPoint {
	out := &restorev1.RecoveryPoint{Id: rp.ID, Tenant: rp.Tenant, Asset: rp.Asset, Valid: rp.Valid, InvalidReason: rp.Reason}
	if rp.Manifest != nil {
		out.CreateTime = timestamppb.New(rp.Manifest.CreatedAt)
		out.Firmware, out.Os = rp.Manifest.Firmware.String(), rp.Manifest.OS.String()
		for _, d := range rp.Manifest.Disks {
			out.Disks = append(out.Disks, &restorev1.Disk{Name: d.Name, Format: d.Format.String(), VirtualSize: d.VirtualSize, Backing: d.Backing})
		}
	}
	return out
}

// report tells the control plane what happened to a restore. A lost report
// is not fatal: the assignment stream keeps asking for the desired state.
func (a *Agent) report(ctx context.Context, id string, state restorev1.RestoreState, reason string, boot *restorev1.Boot) {
	_ = a.send(ctx, &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, RestoreId: id, State: state, StateReason: reason, Boot: boot,
	})
}

// reportVerification reports a VERIFY run's final state with its evidence.
// It is retried for a while: unlike progress, a verdict cannot be asked for
// again.
func (a *Agent) reportVerification(ctx context.Context, id string, state restorev1.RestoreState, reason string, boot *restorev1.Boot, v *restorev1.Verification) {
	req := &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, RestoreId: id, State: state, StateReason: reason, Boot: boot, Verification: v,
	}
	for attempt := 1; ; attempt++ {
		err := a.send(ctx, req)
		if err == nil || attempt == 8 || !retryable(err) {
			return
		}
		time.Sleep(time.Duration(attempt) * 2 * time.Second)
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
	if len(s) <= maxReason {
		return s
	}
	return strings.ToValidUTF8(s[:maxReason-len("…")], "") + "…"
}

func (a *Agent) send(ctx context.Context, req *restorev1.ReportRestoreStatusRequest) error {
	req.StateReason = clampReason(req.StateReason)
	a.mu.Lock()
	client := a.client
	a.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if client == nil {
		a.log.Warn("status report failed", "restore", req.RestoreId, "state", req.State.String(), "err", "not connected")
		return errNotConnected
	}
	if _, err := client.ReportRestoreStatus(a.ctx(rctx), req); err != nil {
		a.log.Warn("status report failed", "restore", req.RestoreId, "state", req.State.String(), "err", err)
		return err
	}
	a.log.Info("restore", "id", req.RestoreId, "state", req.State.String(), "reason", req.StateReason)
	return nil
}

var errNotConnected = errors.New("not connected to a server")
