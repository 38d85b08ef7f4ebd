package e2e

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Tokens through the API: one that expires stops working then (and its
// open stream ends), rotation gives a new secret while the old one works
// for the grace period only, a partner rotates itself and nobody else, and
// the last use shows without a raft entry per call.
func TestTokensExpireRotateWithoutDowntimeAndShowTheirLastUse(t *testing.T) {
	e := startServer(t)
	e.tenant("acme")
	e.tenant("other")

	t.Run("an expiring token stops at its expiry, open streams too", func(t *testing.T) {
		tok, err := e.admins().CreateToken(e.ctx(e.admin), &restorev1.CreateTokenRequest{Tenant: "acme", Role: "partner", TtlSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if tok.ExpireTime == nil || time.Until(tok.ExpireTime.AsTime()) > 3*time.Second {
			t.Fatalf("expire_time %v", tok.ExpireTime)
		}
		if code, _ := e.rest("GET", "/v1/restores", tok.Secret, nil); code != 200 {
			t.Fatalf("before expiry: HTTP %d", code)
		}
		stream, err := e.restores().WatchRestores(e.ctx(tok.Secret), &restorev1.WatchRestoresRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ended := make(chan error, 1)
		go func() {
			for {
				if _, err := stream.Recv(); err != nil {
					ended <- err
					return
				}
			}
		}()
		select {
		case err := <-ended:
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("the stream ended with %v, want Unauthenticated", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream outlived its token")
		}
		code, body := e.rest("GET", "/v1/restores", tok.Secret, nil)
		if code != 401 || !strings.Contains(body["message"].(string), "expired at") {
			t.Fatalf("after expiry: HTTP %d %v", code, body)
		}
	})

	t.Run("a partner rotates itself: both secrets work for the grace, then only the new one", func(t *testing.T) {
		old, oldID := e.token("acme", "partner")
		code, body := e.rest("POST", "/v1/tokens/self:rotate", old, map[string]any{"grace_seconds": 2})
		if code != 200 {
			t.Fatalf("rotate self: HTTP %d %v", code, body)
		}
		nt := body["token"].(map[string]any)
		newSecret, newID := nt["secret"].(string), nt["id"].(string)
		if prev := body["old"].(map[string]any); prev["id"] != oldID || prev["replaced_by"] != newID || prev["expire_time"] == nil {
			t.Fatalf("old token after rotation: %v", prev)
		}
		for _, s := range []string{old, newSecret} {
			if code, _ := e.rest("GET", "/v1/restores", s, nil); code != 200 {
				t.Fatalf("during the grace: HTTP %d", code)
			}
		}
		eventually(t, 10*time.Second, "the old secret to stop", func() bool {
			code, _ := e.rest("GET", "/v1/restores", old, nil)
			return code == 401
		})
		if code, _ := e.rest("GET", "/v1/restores", newSecret, nil); code != 200 {
			t.Fatalf("the new secret after the grace: HTTP %d", code)
		}
		l, err := e.admins().ListTokens(e.ctx(e.admin), &restorev1.ListTokensRequest{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range l.Tokens {
			if tk.Id == newID && (tk.RotatedFrom != oldID || tk.Role != "partner" || tk.Tenant != "acme") {
				t.Fatalf("new token %v", tk)
			}
		}
	})

	t.Run("rotation refused: another's token, twice, bad grace", func(t *testing.T) {
		acme, acmeID := e.token("acme", "partner")
		_, otherID := e.token("other", "partner")
		before := e.quiesce()
		for _, c := range []struct {
			name, token, path string
			body              map[string]any
			code              int
			says              string
		}{
			{"another tenant's token", acme, "/v1/tokens/" + otherID + ":rotate", nil, 403, "only the token it calls with"},
			{"an admin's token", acme, "/v1/tokens/tok-0000000000000000:rotate", nil, 403, "only the token it calls with"},
			{"negative grace", acme, "/v1/tokens/self:rotate", map[string]any{"grace_seconds": -1}, 400, "grace_seconds"},
			{"grace past 30 days", acme, "/v1/tokens/" + acmeID + ":rotate", map[string]any{"grace_seconds": 2592001}, 400, "30 days"},
			{"unknown token", e.admin, "/v1/tokens/tok-nope:rotate", nil, 404, "not found"},
			{"ttl out of range", e.admin, "/v1/tokens", map[string]any{"tenant": "acme", "role": "partner", "ttl_seconds": -5}, 400, "ttl_seconds"},
		} {
			body := c.body
			if body == nil {
				body = map[string]any{}
			}
			code, resp := e.rest("POST", c.path, c.token, body)
			if code != c.code || !strings.Contains(resp["message"].(string), c.says) {
				t.Errorf("%s: HTTP %d %v, want %d saying %q", c.name, code, resp, c.code, c.says)
			}
		}
		if after := e.quiesce(); after != before {
			t.Fatalf("refused calls moved the commit index %d → %d", before, after)
		}
		if _, err := e.admins().RotateToken(e.ctx(e.admin), &restorev1.RotateTokenRequest{Id: acmeID}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.admins().RotateToken(e.ctx(e.admin), &restorev1.RotateTokenRequest{Id: acmeID}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("rotating twice: %v", err)
		}
		out := e.mustCtl(e.admin, "token", "list", "--tenant", "acme")
		for _, want := range []string{"STATE", "EXPIRES", "LAST USED", "rotated→", "expired", "active"} {
			if !strings.Contains(out, want) {
				t.Fatalf("token list lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("the last use shows, written in batches", func(t *testing.T) {
		e := startServer(t, serverOpts{tokenUseInterval: 200 * time.Millisecond})
		e.tenant("acme")
		s, id := e.token("acme", "backup")
		before := e.quiesce()
		start := time.Now()
		for range 50 {
			if code, _ := e.rest("GET", "/v1/recovery-points", s, nil); code != 200 {
				t.Fatalf("HTTP %d", code)
			}
		}
		var last time.Time
		eventually(t, 10*time.Second, "the last use to be written", func() bool {
			l, err := e.admins().ListTokens(e.ctx(e.admin), &restorev1.ListTokensRequest{Tenant: "acme"})
			if err != nil {
				return false
			}
			for _, tk := range l.Tokens {
				if tk.Id == id && tk.LastUsedTime != nil {
					last = tk.LastUsedTime.AsTime()
					return true
				}
			}
			return false
		})
		if last.Before(start.Add(-time.Second)) || last.After(time.Now()) {
			t.Fatalf("last used %v, calls made from %v", last, start)
		}
		// 50 calls (and the admin's list calls) are a few batched entries, not one each.
		if n := e.quiesce() - before; n > 10 {
			t.Fatalf("50 calls wrote %d raft entries", n)
		}
		out := e.mustCtl(e.admin, "token", "list", "--tenant", "acme")
		for _, col := range []string{"STATE", "EXPIRES", "LAST USED", "active", id} {
			if !strings.Contains(out, col) {
				t.Fatalf("token list lacks %q:\n%s", col, out)
			}
		}
	})
}
