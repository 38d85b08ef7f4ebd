package fsm

import (
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func applyCreateJoinToken(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.CreateJoinToken
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	t := cmd.Token.GetToken()
	if t == nil || t.Id == "" || t.HostId == "" || len(cmd.Token.SecretSha256) == 0 || t.ExpireTime == nil {
		return nil, malformed("join token")
	}
	if store.ReaderFor(txn).JoinToken(t.Id) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "join token %q already exists", t.Id)
	}
	return cmd.Token, txn.Insert(store.TableJoinTokens, cmd.Token)
}

// JoinTokenRefused says why a join token cannot be used at time now, or
// nil: the API asks before raft, the FSM again (two agents racing with one
// token: one wins).
func JoinTokenRefused(t *raftv1.StoredJoinToken, now *raftv1.UseJoinToken) error {
	switch {
	case t == nil:
		return status.Error(codes.Unauthenticated, "the join token is not one this cluster issued")
	case t.Token.UseTime != nil:
		return status.Errorf(codes.Unauthenticated, "join token %s was used already (at %s): mint a new one with restorectl host join-token %s",
			t.Token.Id, t.Token.UseTime.AsTime().UTC().Format("2006-01-02T15:04:05Z"), t.Token.HostId)
	case now.Time == nil || !now.Time.AsTime().Before(t.Token.ExpireTime.AsTime()):
		return status.Errorf(codes.Unauthenticated, "join token %s expired at %s: mint a new one with restorectl host join-token %s",
			t.Token.Id, t.Token.ExpireTime.AsTime().UTC().Format("2006-01-02T15:04:05Z"), t.Token.HostId)
	}
	return nil
}

func applyUseJoinToken(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.UseJoinToken
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).JoinToken(cmd.Id)
	if err := JoinTokenRefused(cur, &cmd); err != nil {
		return nil, err
	}
	next := clone(cur)
	next.Token.UseTime = ts(cmd.Time)
	return next, txn.Insert(store.TableJoinTokens, next)
}

// HostInUse says why a host cannot be removed now, or nil: restores or
// snapshots still need its agent.
func HostInUse(r *store.Reader, hostID string) error {
	for _, x := range r.AssignedRestores(hostID) {
		if _, ok := lifecycle.Desired(x); ok {
			return status.Errorf(codes.FailedPrecondition, "host %s still has restore %s (%s): drain it and delete its restores first", hostID, x.Id, x.State)
		}
	}
	if ss := r.AssignedSnapshots(hostID); len(ss) > 0 {
		return status.Errorf(codes.FailedPrecondition, "host %s still serves snapshot %s: release it first", hostID, ss[0].Id)
	}
	return nil
}

// applyRemoveHost forgets a host, withdraws it from the recovery points it
// held, and revokes its agents' certificates issued until now.
func applyRemoveHost(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RemoveHost
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	h := r.Host(cmd.Id)
	if h == nil {
		return nil, notFound("host %q not found", cmd.Id)
	}
	if err := HostInUse(r, cmd.Id); err != nil {
		return nil, err
	}
	if err := withdraw(txn, r, cmd.Id, nil); err != nil {
		return nil, err
	}
	if err := txn.Delete(store.TableHosts, h); err != nil {
		return nil, err
	}
	rev := &raftv1.Revocation{HostId: cmd.Id, RevokeTime: ts(cmd.Time)}
	return rev, txn.Insert(store.TableRevocations, rev)
}
