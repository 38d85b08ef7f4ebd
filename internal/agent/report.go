package agent

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/storage"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func toProto(rp storage.RecoveryPoint) *restorev1.RecoveryPoint {
	out := &restorev1.RecoveryPoint{Id: rp.ID, Tenant: rp.Tenant, Asset: rp.Asset, Valid: rp.Valid, InvalidReason: rp.Reason}
	if rp.Manifest != nil {
		out.CreateTime = timestamppb.New(rp.Manifest.CreatedAt)
		out.Firmware, out.Os = rp.Manifest.Firmware, rp.Manifest.OS
		for _, d := range rp.Manifest.Disks {
			out.Disks = append(out.Disks, &restorev1.Disk{Name: d.Name, Format: d.Format, VirtualSize: d.VirtualSize, Backing: d.Backing})
		}
	}
	return out
}

// report tells the control plane what happened to a restore. A lost report
// is not fatal: the assignment stream keeps asking for the desired state.
func (a *Agent) report(ctx context.Context, id string, state restorev1.RestoreState, reason string, boot *restorev1.Boot) {
	a.mu.Lock()
	client := a.client
	a.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_, err := client.ReportRestoreStatus(a.ctx(rctx), &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: 1, HostId: a.cfg.HostID, RestoreId: id, State: state, StateReason: reason, Boot: boot,
	})
	if err != nil {
		a.log.Warn("status report failed", "restore", id, "state", state.String(), "err", err)
		return
	}
	a.log.Info("restore", "id", id, "state", state.String(), "reason", reason)
}
