package store

import (
	"fmt"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// tokenIDIndexer indexes StoredToken by its public token id, which lives in
// a nested message that StringFieldIndex cannot reach.
type tokenIDIndexer struct{}

func (tokenIDIndexer) FromObject(obj any) (bool, []byte, error) {
	t, ok := obj.(*raftv1.StoredToken)
	if !ok {
		return false, nil, fmt.Errorf("token index: unexpected %T", obj)
	}
	id := t.GetToken().GetId()
	if id == "" {
		return false, nil, nil
	}
	return true, []byte(id + "\x00"), nil
}

func (tokenIDIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("token index: want one argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("token index: argument must be a string")
	}
	return []byte(s + "\x00"), nil
}
