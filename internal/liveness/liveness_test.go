package liveness

import "testing"

// A client that pings more often than the server permits is sent GOAWAY
// (too_many_pings) and loses every stream: the two ends must agree.
func TestClientsPingNoMoreOftenThanServersPermit(t *testing.T) {
	if ClientPing < MinClientPing {
		t.Fatalf("clients ping every %s but servers permit one every %s at most", ClientPing, MinClientPing)
	}
	if ClientPingTimeout >= ClientPing {
		t.Fatalf("the ping timeout %s should be shorter than the ping interval %s", ClientPingTimeout, ClientPing)
	}
	if len(DialOptions()) == 0 || len(ServerOptions()) != 2 {
		t.Fatal("keepalive options missing")
	}
}
