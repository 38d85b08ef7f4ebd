package api

import (
	"errors"
	"testing"
	"time"
)

func TestConsoleTokensAreSingleUseAndExpire(t *testing.T) {
	c := NewConsoles()
	now := time.Now()
	tok, err := c.mint(ConsoleGrant{RestoreID: "r1", Expire: now.Add(ConsoleTTL)}, now)
	if err != nil || len(tok) < 40 {
		t.Fatalf("token %q %v", tok, err)
	}
	if g, err := c.lookup(tok, now, false); err != nil || g.RestoreID != "r1" {
		t.Fatalf("peek: %v %v", g, err)
	}
	if _, err := c.lookup(tok, now, true); err != nil {
		t.Fatalf("first use: %v", err)
	}
	for _, use := range []bool{false, true} {
		if _, err := c.lookup(tok, now, use); !errors.Is(err, ErrConsoleToken) {
			t.Fatalf("replay (use=%v): %v", use, err)
		}
	}
	late, _ := c.mint(ConsoleGrant{RestoreID: "r2", Expire: now.Add(ConsoleTTL)}, now)
	if _, err := c.lookup(late, now.Add(ConsoleTTL+time.Second), true); !errors.Is(err, ErrConsoleToken) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := c.lookup("not-a-token", now, false); !errors.Is(err, ErrConsoleToken) {
		t.Fatalf("unknown token: %v", err)
	}
}
