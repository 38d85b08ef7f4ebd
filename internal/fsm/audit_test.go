package fsm

import (
	"testing"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// The audit record reads each command's ids from its message: every type
// must name its message by the convention commandMessage follows.
func TestEveryCommandTypeNamesItsMessage(t *testing.T) {
	for ct := range commands {
		if commandMessage(ct) == nil {
			t.Errorf("%s: no message restored.raft.v1.<CamelCase of the type>", ct)
		}
	}
	if commandMessage(raftv1.CommandType_COMMAND_TYPE_UNSPECIFIED) != nil {
		t.Error("UNSPECIFIED has a message")
	}
}
