package fsm

import (
	"bytes"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// applyCreateRestores creates a batch of restores: every item is checked
// (idempotency, ids, the quota with the batch's earlier items counted)
// before any is written, so a refused batch writes nothing; a batch whose
// keys all exist with the same bodies is a replay and answers the first
// batch.
func applyCreateRestores(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.CreateRestores
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	if len(cmd.Items) == 0 {
		return nil, malformed("items")
	}
	r := store.ReaderFor(txn)
	out := &restorev1.BatchCreateRestoresResponse{BatchId: cmd.BatchId}
	replays := 0
	var quota lifecycle.BatchQuota
	for i, it := range cmd.Items {
		res := it.GetRestore()
		if res == nil {
			return nil, malformed(fmt.Sprintf("items[%d].restore", i))
		}
		if k := r.IdempotencyKey(IdempotencyKindRestore, res.Tenant, res.RequestId); k != nil {
			if !bytes.Equal(k.BodySha256, it.BodySha256) {
				return nil, ConflictError(res.RequestId, k.ObjectId)
			}
			if prev := r.Restore(k.ObjectId); prev != nil {
				out.Restores = append(out.Restores, prev)
				out.BatchId = prev.BatchId
				replays++
				continue
			}
		}
		if r.Restore(res.Id) != nil {
			return nil, status.Errorf(codes.AlreadyExists, "restore %q already exists", res.Id)
		}
		t := r.Tenant(res.Tenant)
		if t == nil {
			continue
		}
		if err := quota.Allow(t.Quota, func() *restorev1.TenantUsage { return r.TenantUsage(res.Tenant) }, res); err != nil {
			return nil, validate.Item(i, err)
		}
	}
	switch replays {
	case len(cmd.Items):
		return out, nil
	case 0:
	default:
		return nil, status.Errorf(codes.AlreadyExists, "batch %q was made with other items: %d of its %d request ids are taken", cmd.BatchId, replays, len(cmd.Items))
	}
	// Checked: now write them all (each placement hint kept only while its
	// host still fits, the batch's earlier items allocated).
	for _, it := range cmd.Items {
		res := it.Restore
		res.BatchId = cmd.BatchId
		if _, err := createRestore(txn, store.ReaderFor(txn), it, index); err != nil {
			return nil, err
		}
		out.Restores = append(out.Restores, res)
	}
	return out, nil
}
