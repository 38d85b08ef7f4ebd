package fsm

import (
	"github.com/hashicorp/go-memdb"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func applyCreateToken(txn *memdb.Txn, payload []byte, _ uint64) (proto.Message, error) {
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

func applyRevokeToken(txn *memdb.Txn, payload []byte, _ uint64) (proto.Message, error) {
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
