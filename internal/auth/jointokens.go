package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const joinPrefix = "rjt."

// NewJoinToken returns a fresh join token id and its secret,
// "rjt.<id>.<random>".
func NewJoinToken() (id, secret string) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id = "jt-" + hex.EncodeToString(b)
	r := make([]byte, 32)
	_, _ = rand.Read(r)
	return id, joinPrefix + id + "." + base64.RawURLEncoding.EncodeToString(r)
}

// ErrBadJoinToken is the answer to a join token that is malformed, unknown
// or not its secret (one answer for all: it tells an attacker nothing).
var ErrBadJoinToken = status.Error(codes.Unauthenticated, "the join token is not one this cluster issued: mint one with restorectl host join-token HOST")

// FindJoinToken checks a presented join token secret against the state and
// returns the stored token (used or expired ones too: the caller decides).
func FindJoinToken(r *store.Reader, secret string) (*raftv1.StoredJoinToken, error) {
	rest, ok := strings.CutPrefix(secret, joinPrefix)
	if !ok {
		return nil, ErrBadJoinToken
	}
	id, _, _ := strings.Cut(rest, ".")
	t := r.JoinToken(id)
	if t == nil || subtle.ConstantTimeCompare(t.SecretSha256, Hash(secret)) != 1 {
		return nil, ErrBadJoinToken
	}
	return t, nil
}
