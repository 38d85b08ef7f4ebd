package store

import (
	"crypto/x509"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
)

// nestedIDIndexer indexes objects by an id in a nested message.
type nestedIDIndexer struct{ id func(any) string }

func (ix *nestedIDIndexer) FromObject(obj any) (bool, []byte, error) {
	id := ix.id(obj)
	if id == "" {
		return false, nil, nil
	}
	return true, []byte(id + "\x00"), nil
}

func (ix *nestedIDIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("id index: want one argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("id index: argument must be a string")
	}
	return []byte(s + "\x00"), nil
}

// JoinToken returns a stored join token or nil.
func (r *Reader) JoinToken(id string) *raftv1.StoredJoinToken {
	t, _ := r.first(TableJoinTokens, "id", id).(*raftv1.StoredJoinToken)
	return t
}

// Revocation returns the revocation of a host's agent certificates, or nil.
func (r *Reader) Revocation(hostID string) *raftv1.Revocation {
	v, _ := r.first(TableRevocations, "id", hostID).(*raftv1.Revocation)
	return v
}

// RecoveryPointsHeldBy returns the recovery points a host holds (the
// holder index).
func (r *Reader) RecoveryPointsHeldBy(hostID string) []*restorev1.RecoveryPoint {
	return as[*restorev1.RecoveryPoint](r.all(TableRecoveryPoints, indexHolder, hostID))
}

// AgentCertRevoked says whether an agent certificate of host was issued
// before its host's revocation.
func (r *Reader) AgentCertRevoked(hostID string, cert *x509.Certificate) bool {
	v := r.Revocation(hostID)
	return v != nil && pki.RevokedBy(cert.NotBefore, v.RevokeTime.AsTime())
}
