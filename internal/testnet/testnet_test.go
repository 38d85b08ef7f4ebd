package testnet

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

func TestHostsReachEachOtherUntilCutAndEverythingIsRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("network namespaces need root (make test runs as root)")
	}
	ctx := context.Background()
	n, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	a, err := n.Add(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Add(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Listen("tcp", a.Addr(9000))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	}()
	reach := func() error {
		dctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
		c, err := b.DialContext(dctx, "tcp", a.Addr(9000))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		got, err := io.ReadAll(c)
		if err == nil && string(got) != "hello" {
			t.Fatalf("read %q", got)
		}
		return err
	}
	steps := []struct {
		name  string
		do    func() error
		reach bool
	}{
		{"connected", func() error { return nil }, true},
		{"a's link down", func() error { return a.LinkDown(ctx) }, false},
		{"a's link up", func() error { return a.LinkUp(ctx) }, true},
		{"a partitioned from b", func() error { return a.Partition(ctx, b) }, false},
		{"healed", func() error { return a.Heal(ctx, b) }, true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var err error
		for range 20 { // a link coming up takes a moment
			if err = reach(); (err == nil) == s.reach {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if (err == nil) != s.reach {
			t.Fatalf("%s: b reaching a: %v, want reachable=%v", s.name, err, s.reach)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(ctx, n.Prefix); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}
