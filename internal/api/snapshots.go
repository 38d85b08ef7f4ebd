package api

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshot lease bounds, in seconds.
const (
	DefaultLeaseSeconds = 3600
	MinLeaseSeconds     = 10
	MaxLeaseSeconds     = 86400
)

// SnapshotService implements restore.v1.SnapshotService.
type SnapshotService struct {
	restorev1.UnimplementedSnapshotServiceServer
	*Deps
}

// CreateSnapshot implements the RPC.
func (s *SnapshotService) CreateSnapshot(ctx context.Context, req *restorev1.CreateSnapshotRequest) (*restorev1.CreateSnapshotResponse, error) {
	if err := validate.Required("guest_id", req.GuestId); err != nil {
		return nil, err
	}
	if err := validate.Optional("request_id", req.RequestId); err != nil {
		return nil, err
	}
	lease := req.LeaseSeconds
	switch {
	case lease == 0:
		lease = DefaultLeaseSeconds
	case lease < MinLeaseSeconds || lease > MaxLeaseSeconds:
		return nil, validate.Errorf("lease_seconds must be %d to %d (default %d), got %d", MinLeaseSeconds, MaxLeaseSeconds, DefaultLeaseSeconds, lease)
	}
	r := s.Store.Read(nil)
	p := principal(ctx)
	g := r.Guest(req.GuestId)
	if g == nil || !p.Sees(g.Tenant) {
		return nil, status.Errorf(codes.NotFound, "guest %q not found", req.GuestId)
	}
	if h := r.Host(g.HostId); h == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "guest %s lives on host %s, which has never registered", g.Id, g.HostId)
	}
	if err := needs(r, g.HostId, hypervisor.Snapshots, "take snapshots for backup jobs"); err != nil {
		return nil, err
	}
	if err := ownership.Snapshottable(g); err != nil {
		return nil, err
	}
	hash := snapshotBodyHash(req)
	if req.RequestId != "" {
		if k := r.IdempotencyKey(fsm.IdempotencyKindSnapshot, g.Tenant, req.RequestId); k != nil {
			if string(k.BodySha256) != string(hash) {
				return nil, fsm.ConflictError(req.RequestId, k.ObjectId)
			}
			if prev := r.Snapshot(k.ObjectId); prev != nil {
				return &restorev1.CreateSnapshotResponse{Snapshot: prev}, nil
			}
		}
	}
	// Refused here, without a raft entry; the FSM checks again for two
	// creates racing.
	if a := r.ActiveSnapshot(g.Id); a != nil {
		return nil, fsm.SnapshotInTheWay(g.Id, a)
	}
	if t := r.Tenant(g.Tenant); t != nil {
		if err := lifecycle.QuotaAllowsSnapshot(g.Tenant, t.Quota, r.TenantUsage(g.Tenant)); err != nil {
			return nil, err
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "snapshot id: %v", err)
	}
	now := s.Now()
	snap := &restorev1.Snapshot{
		Id: id.String(), Tenant: g.Tenant, GuestId: g.Id, Quiesce: req.Quiesce, Incremental: req.Incremental,
		LeaseSeconds: lease, CreateTime: timestamppb.New(now), RequestId: req.RequestId,
		LeaseExpireTime: timestamppb.New(now.Add(time.Duration(lease) * time.Second)),
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT, &raftv1.CreateSnapshot{Snapshot: snap, BodySha256: hash})
	if err != nil {
		return nil, err
	}
	return &restorev1.CreateSnapshotResponse{Snapshot: out.(*restorev1.Snapshot)}, nil
}

func snapshotBodyHash(req *restorev1.CreateSnapshotRequest) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

func visibleSnapshot(r *store.Reader, ctx context.Context, id string) (*restorev1.Snapshot, error) {
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	x := r.Snapshot(id)
	if x == nil || !principal(ctx).Sees(x.Tenant) {
		return nil, status.Errorf(codes.NotFound, "snapshot %q not found", id)
	}
	return x, nil
}

// GetSnapshot implements the RPC.
func (s *SnapshotService) GetSnapshot(ctx context.Context, req *restorev1.GetSnapshotRequest) (*restorev1.GetSnapshotResponse, error) {
	x, err := visibleSnapshot(s.Store.Read(nil), ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetSnapshotResponse{Snapshot: x}, nil
}

// ListSnapshots implements the RPC.
func (s *SnapshotService) ListSnapshots(ctx context.Context, req *restorev1.ListSnapshotsRequest) (*restorev1.ListSnapshotsResponse, error) {
	if err := validate.Optional("guest_id", req.GuestId); err != nil {
		return nil, err
	}
	r, p := s.Store.Read(nil), principal(ctx)
	if req.GuestId == "" {
		return &restorev1.ListSnapshotsResponse{Snapshots: r.Snapshots(p.Scope())}, nil
	}
	var out []*restorev1.Snapshot
	for _, x := range r.SnapshotsOfGuest(req.GuestId) {
		if p.Sees(x.Tenant) {
			out = append(out, x)
		}
	}
	return &restorev1.ListSnapshotsResponse{Snapshots: out}, nil
}

// WatchSnapshots implements the RPC: the caller's snapshots (of one guest,
// if asked), then each change.
func (s *SnapshotService) WatchSnapshots(req *restorev1.WatchSnapshotsRequest, stream restorev1.SnapshotService_WatchSnapshotsServer) error {
	if err := validate.Optional("guest_id", req.GuestId); err != nil {
		return err
	}
	p := principal(stream.Context())
	match := func(_ *store.Reader, x *restorev1.Snapshot) bool {
		return p.Sees(x.Tenant) && (req.GuestId == "" || x.GuestId == req.GuestId)
	}
	return runWatch(s.Deps, stream, req, watchSpec[*restorev1.Snapshot]{
		kind:  store.KindSnapshot,
		list:  func(r *store.Reader) []*restorev1.Snapshot { return filtered(r, r.Snapshots(p.Scope()), match) },
		match: match,
		send: func(typ restorev1.WatchEventType, rv store.Version, x *restorev1.Snapshot) error {
			return stream.Send(&restorev1.WatchSnapshotsResponse{Snapshot: x, Type: typ, ResourceVersion: rv.String()})
		},
	})
}

// ListSnapshotExtents implements the RPC: the host's agent reads the
// extents from the export's block status, a page at a time.
func (s *SnapshotService) ListSnapshotExtents(ctx context.Context, req *restorev1.ListSnapshotExtentsRequest) (*restorev1.ListSnapshotExtentsResponse, error) {
	x, err := visibleSnapshot(s.Store.Read(nil), ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if err := validate.Required("disk", req.Disk); err != nil {
		return nil, err
	}
	size := req.PageSize
	switch {
	case size == 0:
		size = 1000
	case size < 0 || size > 10000:
		return nil, validate.Errorf("page_size must be 1 to 10000 (default 1000), got %d", size)
	}
	var offset int64
	if req.PageToken != "" {
		if offset, err = strconv.ParseInt(req.PageToken, 10, 64); err != nil || offset < 0 {
			return nil, validate.Errorf("page_token %q is not one this service gave", req.PageToken)
		}
	}
	if !lifecycle.Readable(x) {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s is %s: extents are readable only while it is READY and not released", x.Id, x.State)
	}
	known := false
	for _, d := range x.Disks {
		known = known || d.Name == req.Disk
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "snapshot %s has no disk %q", x.Id, req.Disk)
	}
	data, err := s.fetch(ctx, x.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_EXTENTS,
		SnapshotId: x.Id, Disk: req.Disk, Offset: offset, N: size})
	if err != nil {
		return nil, err
	}
	var resp restorev1.ListSnapshotExtentsResponse
	if err := proto.Unmarshal(data, &resp); err != nil {
		return nil, status.Errorf(codes.Internal, "host %s sent extents that do not decode: %v", x.HostId, err)
	}
	return &resp, nil
}

// DeleteSnapshot implements the RPC.
func (s *SnapshotService) DeleteSnapshot(ctx context.Context, req *restorev1.DeleteSnapshotRequest) (*restorev1.DeleteSnapshotResponse, error) {
	x, err := visibleSnapshot(s.Store.Read(nil), ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if !lifecycle.MayRelease(x) {
		return &restorev1.DeleteSnapshotResponse{Snapshot: x}, nil
	}
	if req.BackupCompleted && x.State != restorev1.SnapshotState_SNAPSHOT_STATE_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s is %s: a backup can complete only from a READY snapshot", x.Id, x.State)
	}
	reason := "released by the backup job"
	if req.BackupCompleted {
		reason = "released by the backup job, which completed"
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS, &raftv1.ReleaseSnapshots{
		Ids: []string{x.Id}, Reason: reason, BackupCompleted: req.BackupCompleted, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.DeleteSnapshotResponse{Snapshot: out.(*restorev1.Snapshot)}, nil
}
