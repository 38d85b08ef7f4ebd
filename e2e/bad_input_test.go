package e2e

import (
	"strings"
	"testing"
)

// Bad input gets a clear, typed error and leaves no raft entry.
func TestBadInputIsRefusedWithoutARaftEntry(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	agent := e.agent("kvm-01", rp("rp-1", "acme", "web"))
	first := e.createRestore(acme, "rp-1", "taken")
	_ = agent

	valid := func() map[string]any {
		return map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 1, "memory_mib": 256, "ttl_seconds": 3600, "request_id": "fresh"}
	}
	with := func(k string, v any) map[string]any {
		b := valid()
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name     string
		method   string
		path     string
		token    string
		body     any
		wantCode int
		wantMsg  string
	}{
		{"vcpus 65", "POST", "/v1/restores", acme, with("vcpus", 65), 400, "vcpus must be between 1 and 64"},
		{"vcpus negative", "POST", "/v1/restores", acme, with("vcpus", -1), 400, "vcpus"},
		{"memory below 96 MiB", "POST", "/v1/restores", acme, with("memory_mib", 95), 400, "memory_mib must be between 96 and 1048576"},
		{"memory above 1 TiB", "POST", "/v1/restores", acme, with("memory_mib", 1048577), 400, "memory_mib"},
		{"ttl negative", "POST", "/v1/restores", acme, with("ttl_seconds", -5), 400, "ttl_seconds must be positive"},
		{"ttl over 30 days", "POST", "/v1/restores", acme, with("ttl_seconds", 30*24*3600+1), 400, "ttl_seconds must be between 1 and 2592000"},
		{"unknown mode", "POST", "/v1/restores", acme, with("mode", "TELEPORT"), 400, "allowed: VIRTUALIZE (MODE_VIRTUALIZE)"},
		{"unknown mode number", "POST", "/v1/restores", acme, with("mode", 42), 400, "mode"},
		{"missing mode", "POST", "/v1/restores", acme, with("mode", nil), 400, "mode is required"},
		{"unknown firmware", "POST", "/v1/restores", acme, with("firmware", "COREBOOT"), 400, "firmware"},
		{"unknown network kind", "POST", "/v1/restores", acme, with("network", map[string]any{"kind": "WIFI"}), 400, "kind"},
		{"bridged without a bridge", "POST", "/v1/restores", acme, with("network", map[string]any{"kind": "BRIDGED"}), 400, "network.bridge must name a host bridge an operator offers"},
		{"bridge name too long", "POST", "/v1/restores", acme, with("network", map[string]any{"kind": "BRIDGED", "bridge": "br-0123456789abcdef"}), 400, "network.bridge"},
		{"missing request_id", "POST", "/v1/restores", acme, with("request_id", nil), 400, "request_id is required"},
		{"request_id over 253 characters", "POST", "/v1/restores", acme, with("request_id", strings.Repeat("r", 254)), 400, "request_id is 254 characters long"},
		{"request_id with a control character", "POST", "/v1/restores", acme, with("request_id", "a\x07b"), 400, "control"},
		{"unknown recovery point", "POST", "/v1/restores", acme, with("recovery_point_id", "rp-nope"), 404, "recovery point \"rp-nope\" not found"},
		{"unknown field", "POST", "/v1/restores", acme, with("colour", "blue"), 400, "colour"},
		{"not JSON", "POST", "/v1/restores", acme, "{not json", 400, ""},
		{"invalid UTF-8 in a string", "POST", "/v1/restores", acme, "{\"recovery_point_id\":\"rp-1\",\"mode\":\"VIRTUALIZE\",\"request_id\":\"\xff\xfe\"}", 400, "invalid character"},
		{"a number where a string goes", "POST", "/v1/restores", acme, with("request_id", 12), 400, ""},
		{"vcpus past int32", "POST", "/v1/restores", acme, with("vcpus", 1<<40), 400, ""},
		{"body over 1 MiB", "POST", "/v1/restores", acme, `{"request_id":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "1 MiB"},
		{"same request_id, another body", "POST", "/v1/restores", acme, map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 2, "request_id": "taken"}, 409, "different body"},
		{"no token", "POST", "/v1/restores", "", valid(), 401, "bearer token"},
		{"garbage token", "POST", "/v1/restores", "rst.tok-nope.xyz", valid(), 401, "bearer token"},
		{"tenant id not a DNS label", "POST", "/v1/tenants", e.admin, map[string]any{"id": "Acme Corp"}, 400, "lowercase DNS label"},
		{"tenant display name over 253", "POST", "/v1/tenants", e.admin, map[string]any{"id": "ok", "display_name": strings.Repeat("n", 254)}, 400, "display_name"},
		{"tenant exists", "POST", "/v1/tenants", e.admin, map[string]any{"id": "acme"}, 409, "already exists"},
		{"token with unknown role", "POST", "/v1/tokens", e.admin, map[string]any{"tenant": "acme", "role": "root"}, 400, "role \"root\""},
		{"partner token without tenant", "POST", "/v1/tokens", e.admin, map[string]any{"role": "partner"}, 400, "tenant"},
		{"partner token for unknown tenant", "POST", "/v1/tokens", e.admin, map[string]any{"tenant": "nope", "role": "partner"}, 404, "create it first"},
		{"operator token bound to a tenant", "POST", "/v1/tokens", e.admin, map[string]any{"tenant": "acme", "role": "operator"}, 400, "not bound to a tenant"},
		{"revoke unknown token", "DELETE", "/v1/tokens/tok-nope", e.admin, nil, 404, "not found"},
		{"drain unknown host", "POST", "/v1/hosts/nope:drain", e.admin, nil, 404, "host \"nope\" not found"},
		{"delete unknown restore", "DELETE", "/v1/restores/nope", acme, nil, 404, "not found"},
		{"bad page token", "GET", "/v1/restores?page_token=%%%", acme, nil, 400, ""},
		{"unknown state filter", "GET", "/v1/restores?state=DANCING", acme, nil, 400, "state"},
	}
	before := e.quiesce()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.rest(tt.method, tt.path, tt.token, tt.body)
			if code != tt.wantCode {
				t.Fatalf("HTTP %d %v, want %d", code, body, tt.wantCode)
			}
			msg, _ := body["message"].(string)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("message %q does not say %q", msg, tt.wantMsg)
			}
			if after := e.commitIndex(); after != before {
				t.Fatalf("commit index moved from %d to %d: a rejected request left a raft entry", before, after)
			}
		})
	}
	if got := e.restoreState(acme, first); got == "" {
		t.Fatal("the first restore is gone")
	}
}
