package fsm

import (
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

func applyRegisterServer(txn *store.Txn, payload []byte, _ uint64) (proto.Message, error) {
	var cmd raftv1.RegisterServer
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	if cmd.Server == nil {
		return nil, malformed("server")
	}
	return cmd.Server, txn.Insert(store.TableServers, cmd.Server)
}
