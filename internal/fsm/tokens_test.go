package fsm_test

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func rotation(newID, oldID string, created, oldExpire *timestamppb.Timestamp) *raftv1.RotateToken {
	return &raftv1.RotateToken{
		Token: &raftv1.StoredToken{Token: &restorev1.Token{Id: newID, Tenant: "acme", Role: "partner", CreateTime: created, RotatedFrom: oldID}, SecretSha256: []byte{9}},
		OldId: oldID, OldExpireTime: oldExpire,
	}
}

// A rotation adds the new token and ends the old one at the grace's end,
// in one entry; it never lengthens the old one's life, and happens once.
func TestRotatingATokenKeepsTheOldOneForTheGraceOnly(t *testing.T) {
	h := newHarness(t)
	seed(h) // tok-1: acme partner, never expires
	old := h.mustApply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, rotation("tok-2", "tok-1", at(100), at(3700))).(*raftv1.StoredToken)
	if old.Token.ReplacedBy != "tok-2" || !old.Token.ExpireTime.AsTime().Equal(at(3700).AsTime()) {
		t.Fatalf("old token after rotation: %v", old.Token)
	}
	r := h.st.Read(nil)
	if nt := r.Token("tok-2"); nt == nil || nt.Token.RotatedFrom != "tok-1" || !store.TokenUsable(nt, t0.Add(1e6)) {
		t.Fatalf("new token: %v", nt)
	}
	if !store.TokenUsable(r.Token("tok-1"), at(3699).AsTime()) || store.TokenUsable(r.Token("tok-1"), at(3700).AsTime()) {
		t.Fatal("the old token must work until the grace ends, and not after")
	}

	cases := []struct {
		name string
		cmd  *raftv1.RotateToken
		code codes.Code
	}{
		{"rotated twice", rotation("tok-3", "tok-1", at(200), at(300)), codes.FailedPrecondition},
		{"unknown token", rotation("tok-3", "tok-x", at(200), at(300)), codes.NotFound},
		{"new id taken", rotation("tok-1", "tok-2", at(200), at(300)), codes.AlreadyExists},
		{"no rotation time", rotation("tok-3", "tok-2", nil, at(300)), codes.InvalidArgument},
		{"old id not named", &raftv1.RotateToken{Token: rotation("tok-3", "tok-2", at(200), at(300)).Token, OldExpireTime: at(300)}, codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.st.Read(nil).Tokens()
			wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, c.cmd), c.code)
			if after := h.st.Read(nil).Tokens(); len(after) != len(before) {
				t.Fatalf("a refused rotation changed the tokens: %d → %d", len(before), len(after))
			}
		})
	}

	t.Run("another role", func(t *testing.T) {
		cmd := rotation("tok-3", "tok-2", at(200), at(300))
		cmd.Token.Token.Role = "admin"
		wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, cmd), codes.InvalidArgument)
	})
	t.Run("the grace never lengthens a life", func(t *testing.T) {
		// tok-2 is rotated with a grace ending after tok-4 would have expired.
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: &raftv1.StoredToken{
			Token: &restorev1.Token{Id: "tok-4", Tenant: "acme", Role: "partner", CreateTime: at(0), ExpireTime: at(500)}}})
		old := h.mustApply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, rotation("tok-5", "tok-4", at(400), at(4000))).(*raftv1.StoredToken)
		if !old.Token.ExpireTime.AsTime().Equal(at(500).AsTime()) {
			t.Fatalf("old token now expires %v, want %v (its own expiry)", old.Token.ExpireTime.AsTime(), at(500).AsTime())
		}
	})
	t.Run("an expired or revoked token", func(t *testing.T) {
		wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, rotation("tok-6", "tok-5", at(600), at(700))), codes.OK)
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_REVOKE_TOKEN, &raftv1.RevokeToken{Id: "tok-6", RevokeTime: at(800)})
		wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, rotation("tok-7", "tok-6", at(900), at(1000))), codes.FailedPrecondition)
		// tok-4 expired at 500.
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN, &raftv1.CreateToken{Token: &raftv1.StoredToken{
			Token: &restorev1.Token{Id: "tok-8", Tenant: "acme", Role: "partner", CreateTime: at(0), ExpireTime: at(500)}}})
		wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN, rotation("tok-9", "tok-8", at(600), at(700))), codes.FailedPrecondition)
	})
}

// Last-used times only move forward, skip tokens no longer stored, and are
// bookkeeping the audit log does not record.
func TestTouchingTokensMovesLastUsedForwardAndIsNotAudited(t *testing.T) {
	h := newHarness(t)
	seed(h)
	// Every entry leaves an audit event (found by id: the harness's entries
	// carry no time, so the time index does not hold them).
	events := len(h.st.Read(nil).Dump().AuditEvents)
	if events == 0 {
		t.Fatal("the seed's writes left no audit events to compare with")
	}
	touch := func(sec int) {
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_TOUCH_TOKENS, &raftv1.TouchTokens{Uses: []*raftv1.TokenUse{
			{Id: "tok-1", Time: at(sec)}, {Id: "tok-gone", Time: at(sec)},
		}})
	}
	touch(50)
	touch(20) // an older batch arriving late
	tok := h.st.Read(nil).Token("tok-1")
	if !tok.Token.LastUsedTime.AsTime().Equal(at(50).AsTime()) {
		t.Fatalf("last used %v, want %v", tok.Token.LastUsedTime.AsTime(), at(50).AsTime())
	}
	if h.st.Read(nil).Token("tok-gone") != nil {
		t.Fatal("a touch created a token")
	}
	if n := len(h.st.Read(nil).Dump().AuditEvents); n != events {
		t.Fatalf("touches added %d audit events", n-events)
	}
}
