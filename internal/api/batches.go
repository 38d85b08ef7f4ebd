package api

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/scheduler"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// MaxBatchItems is the most restores one batch creates.
const MaxBatchItems = 100

// maxBatchRequestID leaves room for the items' "#index".
const maxBatchRequestID = 200

// normalizeBatch validates a batch and every item (named "items[i]" in a
// refusal), filling in the defaults and the items' request ids.
func normalizeBatch(in *restorev1.BatchCreateRestoresRequest) (*restorev1.BatchCreateRestoresRequest, error) {
	if err := validate.Required("request_id", in.RequestId); err != nil {
		return nil, err
	}
	if len(in.RequestId) > maxBatchRequestID {
		return nil, validate.Errorf("request_id has %d bytes (at most %d in a batch)", len(in.RequestId), maxBatchRequestID)
	}
	if len(in.Items) == 0 || len(in.Items) > MaxBatchItems {
		return nil, validate.Errorf("a batch has 1 to %d items, not %d", MaxBatchItems, len(in.Items))
	}
	out := &restorev1.BatchCreateRestoresRequest{RequestId: in.RequestId}
	for i, it := range in.Items {
		if it.GetRequestId() != "" {
			return nil, validate.Errorf("items[%d].request_id: leave it out (the batch's request_id names its items)", i)
		}
		item := proto.Clone(it).(*restorev1.CreateRestoreRequest)
		item.RequestId = fmt.Sprintf("%s#%d", in.RequestId, i)
		n, err := normalizeCreate(item)
		if err != nil {
			return nil, validate.Item(i, err)
		}
		out.Items = append(out.Items, n)
	}
	return out, nil
}

// BatchCreateRestores implements the RPC: every item is checked before
// raft as CreateRestore checks one (the quota with the batch's earlier
// items counted, placement hints from one scheduler pass), then one entry
// creates them all.
func (s *RestoreService) BatchCreateRestores(ctx context.Context, in *restorev1.BatchCreateRestoresRequest) (*restorev1.BatchCreateRestoresResponse, error) {
	req, err := normalizeBatch(in)
	if err != nil {
		return nil, err
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	sum := sha256.Sum256(b)
	hash := sum[:] // every item carries the whole batch's: one changed item is another batch
	r := s.Store.Read(nil)
	p := principal(ctx)
	batchID, err := uuid.NewV7()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "make batch id: %v", err)
	}
	cmd := &raftv1.CreateRestores{BatchId: batchID.String()}
	var made, prev []*restorev1.Restore
	var quota lifecycle.BatchQuota
	for i, item := range req.Items {
		res, first, err := s.prepareRestore(r, p, item, hash)
		if err != nil {
			return nil, validate.Item(i, err)
		}
		if first != nil {
			prev = append(prev, first)
			continue
		}
		if t := r.Tenant(res.Tenant); t != nil {
			if err := quota.Allow(t.Quota, func() *restorev1.TenantUsage { return r.TenantUsage(res.Tenant) }, res); err != nil {
				return nil, validate.Item(i, err) // refused before raft; the FSM checks again
			}
		}
		res.BatchId = cmd.BatchId
		made = append(made, res)
		cmd.Items = append(cmd.Items, &raftv1.CreateRestore{Restore: res, BodySha256: hash})
	}
	switch {
	case len(prev) == len(req.Items):
		return &restorev1.BatchCreateRestoresResponse{BatchId: prev[0].BatchId, Restores: prev}, nil
	case len(prev) > 0:
		return nil, status.Errorf(codes.AlreadyExists, "request_id %q was used for a batch with other items: %d of these %d items are in it", req.RequestId, len(prev), len(req.Items))
	}
	scheduler.PlaceBatch(r, made) // hints: the FSM keeps each only while its host still fits
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES, cmd)
	if err != nil {
		return nil, err
	}
	return out.(*restorev1.BatchCreateRestoresResponse), nil
}
