package api

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SnapshotAssignments lists the snapshots a host must act on: every one
// not yet RELEASED or FAILED, with its guest and the guest's base.
func SnapshotAssignments(r *store.Reader, hostID string) []*restorev1.SnapshotAssignment {
	var out []*restorev1.SnapshotAssignment
	for _, x := range r.AssignedSnapshots(hostID) {
		a := &restorev1.SnapshotAssignment{Snapshot: x, Guest: r.Guest(x.GuestId), Release: x.ReleaseRequested}
		if a.Guest != nil && a.Guest.BaseSnapshotId != "" {
			a.Base = r.Snapshot(a.Guest.BaseSnapshotId)
		}
		out = append(out, a)
	}
	return out
}

func snapshotAssignmentsKey(ss []*restorev1.SnapshotAssignment) string {
	k := ""
	for _, a := range ss {
		k += fmt.Sprintf("s%s/%d/%v;", a.Snapshot.Id, a.Snapshot.State, a.Release)
	}
	return k
}

// ReportSnapshotStatus implements the RPC.
func (s *AgentService) ReportSnapshotStatus(ctx context.Context, req *restorev1.ReportSnapshotStatusRequest) (*restorev1.ReportSnapshotStatusResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	rep := req.Snapshot
	if rep == nil {
		return nil, validate.Errorf("snapshot is required")
	}
	if err := validate.Required("snapshot.id", rep.Id); err != nil {
		return nil, err
	}
	if !lifecycle.Snapshots.Reachable(rep.State, lifecycle.ByAgent) {
		return nil, validate.Errorf("an agent may report PREPARING, READY, RELEASED or FAILED, not %s", rep.State)
	}
	if err := checkGateCA("snapshot.nbd_ca_cert", rep.NbdCaCert); err != nil {
		return nil, err
	}
	x := s.Store.Read(nil).Snapshot(rep.Id)
	if x == nil {
		return nil, status.Errorf(codes.NotFound, "snapshot %q not found", rep.Id)
	}
	if x.HostId != req.HostId {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s is not assigned to host %s", rep.Id, req.HostId)
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REPORT_SNAPSHOT_STATUS,
		&raftv1.ReportSnapshotStatus{HostId: req.HostId, Snapshot: rep, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.ReportSnapshotStatusResponse{Snapshot: out.(*restorev1.Snapshot)}, nil
}

// checkGateCA refuses a reported NBD gate CA (field) that is not a CA
// certificate in PEM; empty is none.
func checkGateCA(field, pem string) error {
	if pem == "" {
		return nil
	}
	if c, err := pki.ParseCert([]byte(pem)); err != nil || !c.IsCA {
		return validate.Errorf("%s is not a CA certificate (PEM): %v", field, err)
	}
	return nil
}
