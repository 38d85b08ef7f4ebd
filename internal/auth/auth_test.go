package auth

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestAuthenticateRefusesUnknownWrongRevokedAndExpiredTokens(t *testing.T) {
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	secrets := map[string]string{}
	txn := st.WriteTxn()
	for _, c := range []struct {
		id             string
		revoke, expire *timestamppb.Timestamp
	}{
		{"tok-ok", nil, nil},
		{"tok-later", nil, timestamppb.New(now.Add(time.Minute))},
		{"tok-revoked", timestamppb.New(now.Add(-time.Minute)), nil},
		{"tok-expired", nil, timestamppb.New(now.Add(-time.Second))},
	} {
		secrets[c.id] = NewSecret(c.id)
		if err := txn.Insert(store.TableTokens, &raftv1.StoredToken{Token: &restorev1.Token{Id: c.id, Tenant: "acme", Role: "partner", RevokeTime: c.revoke, ExpireTime: c.expire}, SecretSha256: Hash(secrets[c.id])}); err != nil {
			t.Fatal(err)
		}
	}
	txn.Commit()
	r := st.Read(nil)
	for _, id := range []string{"tok-ok", "tok-later"} {
		p, err := Authenticate(r, secrets[id], now)
		if err != nil || p.TokenID != id || p.Tenant != "acme" || p.Role != RolePartner {
			t.Errorf("%s: %v %v", id, p, err)
		}
	}
	for name, c := range map[string]struct {
		secret, says string
	}{
		"empty":           {"", "missing or invalid"},
		"not ours":        {"Bearer xyz", "missing or invalid"},
		"unknown id":      {NewSecret("tok-nope"), "missing or invalid"},
		"wrong secret":    {NewSecret("tok-ok"), "missing or invalid"},
		"revoked":         {secrets["tok-revoked"], "missing or invalid"},
		"expired":         {secrets["tok-expired"], "expired at 2026-12-01T11:59:59Z"},
		"later, too late": {secrets["tok-later"], ""},
	} {
		at := now
		if name == "later, too late" {
			at = now.Add(time.Minute)
		}
		_, err := Authenticate(r, c.secret, at)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want Unauthenticated saying %q", name, err, c.says)
		}
	}
}

func TestUsesKeepTheNewestUseUntilTakenAndTakeBackWhatFailed(t *testing.T) {
	u := NewUses()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	u.Note("a", t0.Add(2*time.Second))
	u.Note("a", t0) // older: ignored
	u.Note("b", t0)
	got := u.Take()
	if len(got) != 2 || !got["a"].Equal(t0.Add(2*time.Second)) {
		t.Fatalf("took %v", got)
	}
	if len(u.Take()) != 0 {
		t.Fatal("Take must forget what it returned")
	}
	u.Note("a", t0.Add(5*time.Second)) // a newer use after the failed write
	u.Restore(got)
	again := u.Take()
	if !again["a"].Equal(t0.Add(5*time.Second)) || !again["b"].Equal(t0) {
		t.Fatalf("after restore: %v", again)
	}
	var none *Uses
	none.Note("a", t0) // a server without a record does nothing
}
