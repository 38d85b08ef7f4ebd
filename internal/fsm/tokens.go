package fsm

import (
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func applyCreateToken(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.CreateToken
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	if cmd.Token.GetToken() == nil {
		return nil, malformed("token")
	}
	r := store.ReaderFor(txn)
	if r.Token(cmd.Token.GetToken().GetId()) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "token %q already exists", cmd.Token.GetToken().GetId())
	}
	if cmd.Token.Bootstrap {
		// Only one bootstrap token ever: a second leader racing to mint one
		// loses here, deterministically.
		for _, t := range r.Tokens() {
			if t.Bootstrap {
				return nil, status.Error(codes.AlreadyExists, "a bootstrap token already exists")
			}
		}
	}
	return cmd.Token, txn.Insert(store.TableTokens, cmd.Token)
}

func applyRevokeToken(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RevokeToken
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	cur := store.ReaderFor(txn).Token(cmd.Id)
	if cur == nil {
		return nil, notFound("token %q not found", cmd.Id)
	}
	if cur.Token.RevokeTime != nil {
		return cur, nil
	}
	next := clone(cur)
	next.Token.RevokeTime = ts(cmd.RevokeTime)
	return next, txn.Insert(store.TableTokens, next)
}

// applyRotateToken adds the new token and shortens the old one's life to
// the grace period (never lengthens it), in one entry: there is never a moment when neither
// works, and a token is replaced at most once.
func applyRotateToken(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RotateToken
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	nt := cmd.Token.GetToken()
	if nt == nil || nt.CreateTime == nil || cmd.OldId == "" || cmd.OldExpireTime == nil || nt.RotatedFrom != cmd.OldId {
		return nil, malformed("token, old_id and old_expire_time")
	}
	r := store.ReaderFor(txn)
	old := r.Token(cmd.OldId)
	if old == nil {
		return nil, notFound("token %q not found", cmd.OldId)
	}
	switch {
	case old.Token.ReplacedBy != "":
		return nil, status.Errorf(codes.FailedPrecondition, "token %s was already rotated to %s: rotate that one", old.Token.Id, old.Token.ReplacedBy)
	case !store.TokenUsable(old, nt.CreateTime.AsTime()):
		return nil, status.Errorf(codes.FailedPrecondition, "token %s is revoked or expired: create a new token instead", old.Token.Id)
	case r.Token(nt.Id) != nil:
		return nil, status.Errorf(codes.AlreadyExists, "token %q already exists", nt.Id)
	case nt.Tenant != old.Token.Tenant || nt.Role != old.Token.Role:
		return nil, malformed("token: a rotation keeps the tenant and the role")
	}
	next := clone(old)
	next.Token.ReplacedBy = nt.Id
	if end := store.TokenEnd(old); end.IsZero() || cmd.OldExpireTime.AsTime().Before(end) {
		next.Token.ExpireTime = ts(cmd.OldExpireTime)
	}
	if err := txn.Insert(store.TableTokens, next); err != nil {
		return nil, err
	}
	// The old token as it now is (the caller has the new one).
	return next, txn.Insert(store.TableTokens, cmd.Token)
}

// applyTouchTokens moves tokens' last-used times forward (never back; a
// token no longer stored is skipped).
func applyTouchTokens(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.TouchTokens
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	r := store.ReaderFor(txn)
	for _, u := range cmd.Uses {
		cur := r.Token(u.Id)
		if cur == nil || u.Time == nil || (cur.Token.LastUsedTime != nil && !u.Time.AsTime().After(cur.Token.LastUsedTime.AsTime())) {
			continue
		}
		next := clone(cur)
		next.Token.LastUsedTime = ts(u.Time)
		if err := txn.Insert(store.TableTokens, next); err != nil {
			return nil, err
		}
	}
	return &cmd, nil
}
