package store

import (
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestATokenEndsAtItsRevocationOrExpiryWhicheverComesFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ts := func(s int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(s) * time.Second)) }
	cases := []struct {
		name            string
		revoke, expire  *timestamppb.Timestamp
		end             time.Time
		usableAt        int
		usable, usable2 bool // at usableAt, and one second before end
	}{
		{"never", nil, nil, time.Time{}, 1 << 30, true, true},
		{"revoked", ts(10), nil, t0.Add(10 * time.Second), 10, false, true},
		{"expires", nil, ts(20), t0.Add(20 * time.Second), 20, false, true},
		{"revoked before it expires", ts(10), ts(20), t0.Add(10 * time.Second), 15, false, true},
		{"expired before it was revoked", ts(30), ts(20), t0.Add(20 * time.Second), 25, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := &raftv1.StoredToken{Token: &restorev1.Token{Id: "tok-1", RevokeTime: c.revoke, ExpireTime: c.expire}}
			if got := TokenEnd(tok); !got.Equal(c.end) {
				t.Fatalf("end %v, want %v", got, c.end)
			}
			if got := TokenUsable(tok, t0.Add(time.Duration(c.usableAt)*time.Second)); got != c.usable {
				t.Fatalf("usable at +%ds: %v, want %v", c.usableAt, got, c.usable)
			}
			if !c.end.IsZero() && TokenUsable(tok, c.end.Add(-time.Second)) != c.usable2 {
				t.Fatal("a token must work until its end")
			}
		})
	}
	if TokenUsable(nil, t0) {
		t.Fatal("no token is usable")
	}
}
