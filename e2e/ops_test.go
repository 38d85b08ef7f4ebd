package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/restored/restored/internal/server"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func TestHealthReadinessMetricsAndReflection(t *testing.T) {
	e := startServer(t)
	e.tenant("acme") // one gRPC call, so request metrics exist
	for _, p := range []struct {
		path, want string
	}{
		{"/healthz", `"alive"`},
		{"/readyz", `"ready"`},
	} {
		code, body := e.rest("GET", p.path, "", nil)
		raw, _ := json.Marshal(body)
		if code != 200 || !strings.Contains(string(raw), p.want) {
			t.Fatalf("%s: HTTP %d %s", p.path, code, raw)
		}
	}
	// /metrics names every tenant: no token is 401, a partner's is 403.
	scrape := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	partner, _ := e.token("acme", "partner")
	for tok, want := range map[string]int{"": 401, partner: 403} {
		if resp := scrape(tok); resp.StatusCode != want {
			t.Fatalf("/metrics with token %q: HTTP %d, want %d", tok, resp.StatusCode, want)
		} else {
			resp.Body.Close()
		}
	}
	resp := scrape(e.admin)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"restored_raft_leader 1", "restored_raft_commit_index", "restored_restores{state=\"RESTORE_STATE_RUNNING\"} 0", "restored_grpc_requests_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The health service follows readiness within one 50 ms tick.
	eventually(t, 5*time.Second, "gRPC health SERVING", func() bool {
		h, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && h.Status == healthpb.HealthCheckResponse_SERVING
	})
	rc, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	lr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range lr.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{"restore.v1.RestoreService", "restore.v1.AdminService", "restore.v1.AgentService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lacks %s: %v", want, names)
		}
	}
}

// The OpenAPI document is served, is OpenAPI 2.0, documents every REST
// route, and every $ref in it resolves.
func TestOpenAPIDocumentIsServedAndConsistent(t *testing.T) {
	e := startServer(t)
	resp, err := e.http.Get(e.base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Validate with kin-openapi: parse as OpenAPI 2, convert, validate.
	var v2 openapi2.T
	if err := json.Unmarshal(raw, &v2); err != nil {
		t.Fatalf("not an OpenAPI 2 document: %v", err)
	}
	v3, err := openapi2conv.ToV3(&v2)
	if err != nil {
		t.Fatalf("convert to OpenAPI 3: %v", err)
	}
	if err := v3.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["swagger"] != "2.0" {
		t.Fatalf("swagger = %v", doc["swagger"])
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/restores", "/v1/restores/{id}", "/v1/restores:watch", "/v1/recovery-points", "/v1/recovery-points/{id}",
		"/v1/hosts", "/v1/hosts/{id}", "/v1/hosts/{id}:drain", "/v1/hosts/{id}:undrain", "/v1/tenants", "/v1/tokens", "/v1/tokens/{id}", "/v1/cluster",
		"/v1/hosts:watch", "/v1/snapshots:watch", "/v1/verifications:watch", "/v1/audit-events:watch"} {
		if paths[p] == nil {
			t.Errorf("OpenAPI lacks %s", p)
		}
	}
	defs := doc["definitions"].(map[string]any)
	var walk func(v any)
	refs := 0
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				refs++
				name := strings.TrimPrefix(ref, "#/definitions/")
				if defs[name] == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	if refs == 0 {
		t.Fatal("no $ref found: the document is not what it should be")
	}
	desc := doc["info"].(map[string]any)["description"].(string)
	if !strings.Contains(desc, `"mode":"VIRTUALIZE"`) || !strings.Contains(desc, `"mode":"MODE_VIRTUALIZE"`) {
		t.Error("the description does not document both enum forms")
	}
}

func TestStartupFailsAtOnceWithAClearMessage(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"data dir cannot be created", server.Config{DataDir: filepath.Join(file, "sub")}, "cannot be created"},
		{"data dir is not writable", server.Config{DataDir: "/proc/restored-test"}, "data dir /proc/restored-test"},
		{"grpc port in use", server.Config{DataDir: t.TempDir(), GRPCAddr: busy.Addr().String()}, "address already in use"},
		{"http port in use", server.Config{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: busy.Addr().String()}, "http address"},
		{"raft port in use", server.Config{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RaftAddr: busy.Addr().String()}, "raft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := server.Start(tt.cfg)
			if err == nil {
				s.Stop()
				t.Fatal("started anyway")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s to fail", d)
			}
		})
	}
}
