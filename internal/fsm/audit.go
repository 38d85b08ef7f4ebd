package fsm

import (
	"strings"

	"github.com/restored/restored/internal/audit"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// commandMessage is the message type of a command: COMMAND_TYPE_FOO_BAR
// carries restored.raft.v1.FooBar (a test holds every type to it).
func commandMessage(t raftv1.CommandType) proto.Message {
	parts := strings.Split(strings.TrimPrefix(t.String(), "COMMAND_TYPE_"), "_")
	for i, p := range parts {
		parts[i] = p[:1] + strings.ToLower(p[1:])
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("restored.raft.v1." + strings.Join(parts, "")))
	if err != nil {
		return nil
	}
	return mt.New().Interface()
}

// recordWrite keeps the audit event of an applied (or refused) entry.
func recordWrite(txn *store.Txn, index uint64, env *raftv1.Envelope, c command, result proto.Message, err error) error {
	if c.unaudited {
		return nil
	}
	cmd := commandMessage(env.Type)
	if cmd != nil && proto.Unmarshal(env.Payload, cmd) != nil {
		cmd = nil
	}
	return txn.Insert(store.TableAudit, audit.Write(index, env.Audit, env.Type, cmd, result, err))
}
