package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/server"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A tenant's quota through the API: creates past it are 429 naming the
// limit, with no raft entry; the tenant sees its own usage and quota and
// nobody else's; only an admin sets it.
func TestTenantQuotasAreEnforcedAndShown(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	other := e.partner("other")
	e.agent("kvm-01", rp("rp-1", "acme", "web"))

	if code, body := e.rest("PUT", "/v1/tenants/acme/quota", e.admin, map[string]any{"max_restores": 2, "max_vcpus": 8}); code != 200 || body["quota"] == nil {
		t.Fatalf("set quota: HTTP %d %v", code, body)
	}
	e.createRestore(acme, "rp-1", "q-1")
	e.createRestore(acme, "rp-1", "q-2")
	before := e.quiesce()
	code, body := e.rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 1, "memory_mib": 256, "ttl_seconds": 3600, "request_id": "q-3",
	})
	if code != 429 || !strings.Contains(body["message"].(string), "allows 2 restores at once") {
		t.Fatalf("past the quota: HTTP %d %v", code, body)
	}
	// The same request id again answers the restore it made, quota or not.
	if again := e.createRestore(acme, "rp-1", "q-1"); again == "" {
		t.Fatal("a retried create within the quota failed")
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused creates moved the commit index %d → %d", before, after)
	}

	code, body = e.rest("GET", "/v1/tenants/acme", acme, nil)
	usage, _ := body["usage"].(map[string]any)
	if code != 200 || usage["restores"] != float64(2) || usage["vcpus"] != float64(2) || body["quota"].(map[string]any)["max_restores"] != float64(2) {
		t.Fatalf("acme reads its own usage: HTTP %d %v", code, body)
	}
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		code                      int
	}{
		{"another tenant's", "GET", "/v1/tenants/acme", other, nil, 404},
		{"a partner sets a quota", "PUT", "/v1/tenants/acme/quota", acme, map[string]any{"max_restores": 100}, 403},
		{"a negative limit", "PUT", "/v1/tenants/acme/quota", e.admin, map[string]any{"max_restores": -1}, 400},
		{"an unknown tenant", "PUT", "/v1/tenants/nope/quota", e.admin, map[string]any{"max_restores": 1}, 404},
	} {
		if code, body := e.rest(c.method, c.path, c.token, c.body); code != c.code {
			t.Errorf("%s: HTTP %d %v, want %d", c.name, code, body, c.code)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused quota calls moved the commit index %d → %d", before, after)
	}
	// Raised, the next create fits; restorectl shows used/limit.
	if code, _ := e.rest("PUT", "/v1/tenants/acme/quota", e.admin, map[string]any{"max_restores": 3}); code != 200 {
		t.Fatal("raise the quota")
	}
	e.createRestore(acme, "rp-1", "q-3")
	if out := e.mustCtl(e.admin, "tenant", "list"); !strings.Contains(out, "3/3") {
		t.Fatalf("tenant list does not show used/limit:\n%s", out)
	}
}

// A token past its rate gets 429 with Retry-After (RESOURCE_EXHAUSTED with
// RetryInfo over gRPC); other tokens are served; a client that keeps
// failing to authenticate is refused outright, a good token from it is not.
func TestRateLimitsRefuseWithRetryAfterAndSpareOthers(t *testing.T) {
	e := startServer(t, serverOpts{limits: server.Limits{TokenRate: 0.2, TokenBurst: 5, AuthFailureRate: 0.2, AuthFailureBurst: 3}})
	e.tenant("acme")
	busy, busyID := e.token("acme", "partner")
	calm, _ := e.token("acme", "partner")
	for i := range 5 {
		if code, _ := e.rest("GET", "/v1/restores", busy, nil); code != 200 {
			t.Fatalf("request %d within the burst: HTTP %d", i, code)
		}
	}
	req, _ := http.NewRequest("GET", e.base+"/v1/restores", nil)
	req.Header.Set("Authorization", "Bearer "+busy)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: HTTP %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, err = e.restores().ListRestores(e.ctx(busy), &restorev1.ListRestoresRequest{})
	st := status.Convert(err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if st.Code() != codes.ResourceExhausted || retry == nil || retry.RetryDelay.AsDuration() <= 0 || !strings.Contains(st.Message(), busyID) {
		t.Fatalf("gRPC past the burst: %v (retry %v)", err, retry)
	}
	if code, _ := e.rest("GET", "/v1/restores", calm, nil); code != 200 {
		t.Fatalf("another token: HTTP %d", code)
	}
	// The refusal is in the audit log.
	evs, err := restorev1.NewAuditServiceClient(e.conn).ListAuditEvents(e.ctx(e.admin), &restorev1.ListAuditEventsRequest{Target: "", Method: "ListRestores", Outcome: restorev1.AuditOutcome_AUDIT_OUTCOME_REFUSED})
	if err != nil || len(evs.Events) == 0 || evs.Events[0].Code != "ResourceExhausted" {
		t.Fatalf("audit of the rate limit: %v %v", evs, err)
	}

	for i := range 3 {
		if code, _ := e.rest("GET", "/v1/restores", "rst.tok-0000000000000000.guess", nil); code != 401 {
			t.Fatalf("bad token %d: HTTP %d", i, code)
		}
	}
	if code, _ := e.rest("GET", "/v1/restores", "rst.tok-0000000000000000.guess", nil); code != 429 {
		t.Fatalf("a client that keeps failing: HTTP %d, want 429", code)
	}
	if code, _ := e.rest("GET", "/v1/restores", calm, nil); code != 200 {
		t.Fatalf("a good token from the same address: HTTP %d", code)
	}
}

// A client that opens a connection and sends nothing (or half a request)
// is cut off; everyone else is served meanwhile. A gRPC connection is held
// to its stream limit.
func TestSlowClientsAreCutOffAndStreamsAreBounded(t *testing.T) {
	e := startServer(t, serverOpts{limits: server.Limits{
		HTTPReadHeaderTimeout: time.Second, HTTPReadTimeout: 2 * time.Second, GRPCConnectionTimeout: time.Second, GRPCMaxStreams: 2,
	}})
	acme := e.partner("acme")
	pem, err := os.ReadFile(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cutOff := func(t *testing.T, conn net.Conn) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server kept the slow connection open for 20 s")
				}
				return // closed by the server
			}
		}
	}
	t.Run("half a request over HTTPS", func(t *testing.T) {
		conn, err := tls.Dial("tcp", e.srv.HTTPAddr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("GET /v1/restores HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		// Served while the slow one waits.
		if code, _ := e.rest("GET", "/v1/restores", acme, nil); code != 200 {
			t.Fatalf("another client: HTTP %d", code)
		}
		cutOff(t, conn)
	})
	t.Run("no TLS handshake on either port", func(t *testing.T) {
		for _, addr := range []string{e.srv.HTTPAddr(), e.srv.GRPCAddr()} {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			cutOff(t, conn)
			conn.Close()
		}
		if code, _ := e.rest("GET", "/v1/restores", acme, nil); code != 200 {
			t.Fatalf("after the slow clients: HTTP %d", code)
		}
	})
	t.Run("a connection's streams are bounded", func(t *testing.T) {
		conn := grpcConn(t, e.ca, e.srv.GRPCAddr())
		client := restorev1.NewRestoreServiceClient(conn)
		var cancels []context.CancelFunc
		for range 2 {
			ctx, cancel := context.WithCancel(e.ctx(acme))
			cancels = append(cancels, cancel)
			s, err := client.WatchRestores(ctx, &restorev1.WatchRestoresRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Header(); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(e.ctx(acme), 1500*time.Millisecond)
		defer cancel()
		s, err := client.WatchRestores(ctx, &restorev1.WatchRestoresRequest{})
		if err == nil {
			_, err = s.Header()
		}
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("a third stream on a connection allowed two: %v", err)
		}
		cancels[0]()
		s, err = client.WatchRestores(e.ctx(acme), &restorev1.WatchRestoresRequest{})
		if err == nil {
			_, err = s.Header()
		}
		if err != nil {
			t.Fatalf("a stream after one closed: %v", err)
		}
		cancels[1]()
	})
}
