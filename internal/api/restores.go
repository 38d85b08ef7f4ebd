package api

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/scheduler"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// RestoreService implements restore.v1.RestoreService.
type RestoreService struct {
	restorev1.UnimplementedRestoreServiceServer
	*Deps
}

// normalizeCreate validates a create request and fills in defaults.
func normalizeCreate(in *restorev1.CreateRestoreRequest) (*restorev1.CreateRestoreRequest, error) {
	req := proto.Clone(in).(*restorev1.CreateRestoreRequest)
	if err := validate.Required("request_id", req.RequestId); err != nil {
		return nil, err
	}
	if err := validate.Required("recovery_point_id", req.RecoveryPointId); err != nil {
		return nil, err
	}
	if err := validate.Enum("mode", req.Mode); err != nil {
		return nil, err
	}
	if err := normalizeSize(req); err != nil {
		return nil, err
	}
	if err := checkOverlayLimit(req); err != nil {
		return nil, err
	}
	if req.TtlSeconds < 0 {
		return nil, validate.Errorf("ttl_seconds must be positive (at most %d, 30 days), got %d", validate.MaxTTLSeconds, req.TtlSeconds)
	}
	if req.TtlSeconds == 0 {
		req.TtlSeconds = int64(lifecycle.DefaultTTL(req.Mode) / time.Second)
	}
	if err := validate.Range("ttl_seconds", req.TtlSeconds, 1, validate.MaxTTLSeconds); err != nil {
		return nil, err
	}
	if err := validate.EnumOrUnset("firmware", req.Firmware); err != nil {
		return nil, err
	}
	if req.Firmware == restorev1.Firmware_FIRMWARE_UNSPECIFIED {
		req.Firmware = restorev1.Firmware_FIRMWARE_AUTO
	}
	if req.Network == nil {
		req.Network = &restorev1.Network{}
	}
	if err := validate.EnumOrUnset("network.kind", req.Network.Kind); err != nil {
		return nil, err
	}
	if req.Network.Kind == restorev1.NetworkKind_NETWORK_KIND_UNSPECIFIED {
		req.Network.Kind = restorev1.NetworkKind_NETWORK_KIND_NONE
	}
	if err := normalizeNetwork(req.Network); err != nil {
		return nil, err
	}
	if err := normalizeVerify(req.Mode, req.Verify); err != nil {
		return nil, err
	}
	switch {
	case req.Export != nil && req.Mode != restorev1.Mode_MODE_EXPORT:
		return nil, validate.Errorf("export options are for EXPORT restores, not %s", req.Mode)
	case req.Image != nil && req.Mode != restorev1.Mode_MODE_IMAGE:
		return nil, validate.Errorf("image options are for IMAGE restores, not %s", req.Mode)
	case !lifecycle.HasVM(req.Mode) && req.Network.Kind != restorev1.NetworkKind_NETWORK_KIND_NONE:
		return nil, validate.Errorf("an %s restore has no VM and so no network: leave network out (it was %s)", lifecycle.ModeName(req.Mode), req.Network.Kind)
	case req.Mode == restorev1.Mode_MODE_EXPORT && req.Export == nil:
		req.Export = &restorev1.ExportOptions{}
	case req.Mode == restorev1.Mode_MODE_EXPORT:
		if err := validate.EnumOrUnset("export.protocol", req.Export.Protocol); err != nil {
			return nil, err
		}
	case req.Mode == restorev1.Mode_MODE_IMAGE:
		if _, ok := kinds.ImageFormatFromAPI(req.GetImage().GetFormat()); !ok {
			return nil, validate.Errorf("an IMAGE restore needs image.format: QCOW2, VMDK or VHDX (got %s)", req.GetImage().GetFormat())
		}
	}
	return req, nil
}

// normalizeSize fills in a VM's vCPUs and memory, and refuses them for a
// restore without a VM (it takes no VM capacity of its host).
func normalizeSize(req *restorev1.CreateRestoreRequest) error {
	if !lifecycle.HasVM(req.Mode) {
		if req.Vcpus != 0 || req.MemoryMib != 0 {
			return validate.Errorf("an %s restore has no VM: leave vcpus and memory_mib out (they were %d and %d)", lifecycle.ModeName(req.Mode), req.Vcpus, req.MemoryMib)
		}
		return nil
	}
	if req.Vcpus == 0 {
		req.Vcpus = lifecycle.DefaultVCPUs
	}
	if err := validate.Range("vcpus", int64(req.Vcpus), validate.MinVCPUs, validate.MaxVCPUs); err != nil {
		return err
	}
	if req.MemoryMib == 0 {
		req.MemoryMib = lifecycle.DefaultMemoryMiB
	}
	return validate.Range("memory_mib", req.MemoryMib, validate.MinMemoryMiB, validate.MaxMemoryMiB)
}

// checkOverlayLimit refuses an overlay limit out of range, or for a
// restore without an overlay (0 takes the recovery point's default).
func checkOverlayLimit(req *restorev1.CreateRestoreRequest) error {
	switch {
	case req.OverlayLimitMib == 0:
		return nil
	case !lifecycle.HasOverlay(req.Mode):
		return validate.Errorf("an %s restore has no overlay: leave overlay_limit_mib out (it was %d)", lifecycle.ModeName(req.Mode), req.OverlayLimitMib)
	}
	return validate.Range("overlay_limit_mib", req.OverlayLimitMib, lifecycle.MinOverlayLimitMiB, lifecycle.MaxOverlayLimitMiB)
}

func bodyHash(req *restorev1.CreateRestoreRequest) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

// CreateRestore implements the RPC.
func (s *RestoreService) CreateRestore(ctx context.Context, in *restorev1.CreateRestoreRequest) (*restorev1.CreateRestoreResponse, error) {
	req, err := normalizeCreate(in)
	if err != nil {
		return nil, err
	}
	r := s.Store.Read(nil)
	hash := bodyHash(req)
	res, prev, err := s.prepareRestore(r, principal(ctx), req, hash)
	switch {
	case err != nil:
		return nil, err
	case prev != nil:
		return &restorev1.CreateRestoreResponse{Restore: prev}, nil
	}
	if t := r.Tenant(res.Tenant); t != nil {
		if err := lifecycle.QuotaAllowsRestore(res.Tenant, t.Quota, r.TenantUsage(res.Tenant), res); err != nil {
			return nil, err // refused before raft; the FSM checks again
		}
	}
	if host, why := scheduler.PlaceOne(r, res); host != "" {
		res.HostId = host // a hint: the FSM keeps it only if the host still fits
	} else if why != "" {
		res.StateReason = why // PENDING says why from the start
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: res, BodySha256: hash})
	if err != nil {
		return nil, err
	}
	return &restorev1.CreateRestoreResponse{Restore: out.(*restorev1.Restore)}, nil
}

// prepareRestore makes the restore a normalized create request asks for,
// checked before raft (the recovery point visible to p and valid, a host
// holding it able to serve the mode, the request_id's body, the bridge
// offered), or returns the first restore made with its request_id and
// hash. The quota and the placement hint are the caller's: a batch
// counts its earlier items.
func (s *RestoreService) prepareRestore(r *store.Reader, p *auth.Principal, req *restorev1.CreateRestoreRequest, hash []byte) (res, prev *restorev1.Restore, err error) {
	rp := r.RecoveryPoint(req.RecoveryPointId)
	if rp == nil || !p.Sees(rp.Tenant) {
		return nil, nil, status.Errorf(codes.NotFound, "recovery point %q not found", req.RecoveryPointId)
	}
	if !rp.Valid {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "recovery point %q is invalid and cannot be booted: %s", rp.Id, rp.InvalidReason)
	}
	if err := anyCan(r, rp.HostIds, lifecycle.RestoreNeeds(req.Mode), lifecycle.WhatModeDoes(req.Mode)); err != nil {
		return nil, nil, err // no host holding it can serve it
	}
	if k := r.IdempotencyKey(fsm.IdempotencyKindRestore, rp.Tenant, req.RequestId); k != nil {
		if string(k.BodySha256) != string(hash) {
			return nil, nil, fsm.ConflictError(req.RequestId, k.ObjectId)
		}
		if prev := r.Restore(k.ObjectId); prev != nil {
			return nil, prev, nil
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "make restore id: %v", err)
	}
	res = lifecycle.NewRestore(lifecycle.NewRestoreSpec{
		ID: id.String(), RecoveryPoint: rp, Mode: req.Mode, VCPUs: req.Vcpus, MemoryMiB: req.MemoryMib, OverlayLimitMiB: req.OverlayLimitMib,
		TTL: time.Duration(req.TtlSeconds) * time.Second, Firmware: req.Firmware, Network: req.Network,
		Verify: req.Verify, Export: req.Export, Image: req.Image, RequestID: req.RequestId, Now: s.Now(),
	})
	if err := offerNetwork(r, rp, res); err != nil {
		return nil, nil, err
	}
	return res, nil, nil
}

// visibleRestore returns the restore when the caller may see it.
func visibleRestore(r *store.Reader, p *auth.Principal, id string) (*restorev1.Restore, error) {
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	x := r.Restore(id)
	if x == nil || !p.Sees(x.Tenant) {
		return nil, status.Errorf(codes.NotFound, "restore %q not found", id)
	}
	return x, nil
}

// GetRestore implements the RPC.
func (s *RestoreService) GetRestore(ctx context.Context, req *restorev1.GetRestoreRequest) (*restorev1.GetRestoreResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetRestoreResponse{Restore: x}, nil
}

type restoreFilter struct {
	state                restorev1.RestoreState
	asset, rpID, batchID string
}

func (f restoreFilter) match(x *restorev1.Restore) bool {
	return (f.state == 0 || x.State == f.state) &&
		(f.asset == "" || x.Asset == f.asset) &&
		(f.rpID == "" || x.RecoveryPointId == f.rpID) &&
		(f.batchID == "" || x.BatchId == f.batchID)
}

func newFilter(state restorev1.RestoreState, asset, rpID, batchID string) (restoreFilter, error) {
	if err := validate.EnumOrUnset("state", state); err != nil {
		return restoreFilter{}, err
	}
	if err := validate.Optional("asset", asset); err != nil {
		return restoreFilter{}, err
	}
	if err := validate.Optional("recovery_point_id", rpID); err != nil {
		return restoreFilter{}, err
	}
	if err := validate.Optional("batch_id", batchID); err != nil {
		return restoreFilter{}, err
	}
	return restoreFilter{state: state, asset: asset, rpID: rpID, batchID: batchID}, nil
}

// ListRestores implements the RPC.
func (s *RestoreService) ListRestores(ctx context.Context, req *restorev1.ListRestoresRequest) (*restorev1.ListRestoresResponse, error) {
	f, err := newFilter(req.State, req.Asset, req.RecoveryPointId, req.BatchId)
	if err != nil {
		return nil, err
	}
	p, err := paginate(s.Store.Read(nil).Restores(principal(ctx).Scope()), (*restorev1.Restore).GetId, newestFirst,
		req.PageSize, req.PageToken, f.match)
	if err != nil {
		return nil, err
	}
	return &restorev1.ListRestoresResponse{Restores: p.Items, NextPageToken: p.Next}, nil
}

// DeleteRestore implements the RPC.
func (s *RestoreService) DeleteRestore(ctx context.Context, req *restorev1.DeleteRestoreRequest) (*restorev1.DeleteRestoreResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if _, ok := lifecycle.Deletion(x.State); !ok {
		return &restorev1.DeleteRestoreResponse{Restore: x}, nil // nothing to do: no raft entry
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE,
		&raftv1.DeleteRestore{Id: x.Id, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.DeleteRestoreResponse{Restore: out.(*restorev1.Restore)}, nil
}

// WatchRestores implements the RPC: every matching restore, then each one
// again whenever it changes. It ends with Unauthenticated as soon as the
// caller's token is revoked or expires.
func (s *RestoreService) WatchRestores(req *restorev1.WatchRestoresRequest, stream restorev1.RestoreService_WatchRestoresServer) error {
	p := principal(stream.Context())
	f, err := newFilter(req.State, req.Asset, req.RecoveryPointId, req.BatchId)
	if err != nil {
		return err
	}
	match := func(_ *store.Reader, x *restorev1.Restore) bool { return p.Sees(x.Tenant) && f.match(x) }
	return runWatch(s.Deps, stream, req, watchSpec[*restorev1.Restore]{
		kind:  store.KindRestore,
		list:  func(r *store.Reader) []*restorev1.Restore { return filtered(r, r.Restores(p.Scope()), match) },
		match: match,
		send: func(typ restorev1.WatchEventType, rv store.Version, x *restorev1.Restore) error {
			return stream.Send(&restorev1.WatchRestoresResponse{Restore: x, Type: typ, ResourceVersion: rv.String()})
		},
	})
}
