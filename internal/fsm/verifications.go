package fsm

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Limits on what an agent may store with a verification.
const (
	maxChecks      = 64
	maxScreenshots = 16
	maxSerialTail  = 4 << 10
	maxDetail      = 2 << 10
)

// verificationOf checks a verification an agent reported for restore cur and
// returns what is stored: its identity (id, tenant, asset, recovery point,
// host) comes from the restore, never from the agent.
func verificationOf(cur *restorev1.Restore, in *restorev1.Verification) (*restorev1.Verification, error) {
	if cur.Mode != restorev1.Mode_MODE_VERIFY {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is not a VERIFY restore", cur.Id)
	}
	switch {
	case in.Verdict == restorev1.Verdict_VERDICT_UNSPECIFIED || restorev1.Verdict_name[int32(in.Verdict)] == "":
		return nil, malformed("verification verdict")
	case len(in.Checks) > maxChecks, len(in.Screenshots) > maxScreenshots, len(in.SerialTail) > maxSerialTail, len(in.Reason) > maxDetail:
		return nil, malformed("verification size")
	}
	for _, c := range in.Checks {
		if len(c.Detail) > maxDetail || len(c.Name) > 64 {
			return nil, malformed("verification check")
		}
	}
	v := clone(in)
	v.Id, v.Tenant, v.Asset, v.RecoveryPointId, v.HostId = cur.Id, cur.Tenant, cur.Asset, cur.RecoveryPointId, cur.HostId
	v.PolicyId = cur.PolicyId
	return v, nil
}

func applySetVerificationPolicy(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.SetVerificationPolicy
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	p := cmd.Policy
	if p == nil || p.Tenant == "" || p.Asset == "" || p.Id != p.Tenant+"/"+p.Asset || p.IntervalSeconds <= 0 {
		return nil, malformed("verification policy")
	}
	if store.ReaderFor(txn).Tenant(p.Tenant) == nil {
		return nil, notFound("tenant %q not found", p.Tenant)
	}
	return p, txn.Insert(store.TableVerificationPolicies, p)
}

func applyDeleteVerificationPolicy(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.DeleteVerificationPolicy
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	p := store.ReaderFor(txn).VerificationPolicy(cmd.Id)
	if p == nil {
		return nil, notFound("verification policy %q not found", cmd.Id)
	}
	return p, txn.Delete(store.TableVerificationPolicies, p)
}

func applyPruneVerifications(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.PruneVerifications
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, id := range cmd.Ids {
		if v := r.Verification(id); v != nil { // gone already: nothing to do
			if err := txn.Delete(store.TableVerifications, v); err != nil {
				return nil, err
			}
		}
	}
	return &cmd, nil
}
