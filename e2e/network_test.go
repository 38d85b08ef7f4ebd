package e2e

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// A partner attaches restores only to the bridges an operator offers its
// tenant; a bridged restore of a machine that runs in production boots
// with its link down until the partner says the machine is gone; a lab
// keeps several restores on one isolated network (one host).
func TestRestoresUseOnlyOfferedBridgesAndMeetNoProductionTwin(t *testing.T) {
	e := startServer(t)
	acme, globex := e.partner("acme"), e.partner("globex")
	a := e.agent("kvm-01", rp("rp-web", "acme", "web-01"), rp("rp-db", "acme", "db-01"), rp("rp-g", "globex", "shop"))
	a.offer(&restorev1.HostBridge{Name: "br-acme", Tenants: []string{"acme"}}, &restorev1.HostBridge{Name: "br-lab", AllTenants: true})
	e.agent("kvm-02", rp("rp-web", "acme", "web-01"), rp("rp-db", "acme", "db-01"))
	a.inventory(&restorev1.HostDomain{Uuid: uuidWeb, Name: "web-01", Running: true}) // web-01 runs in production
	bridged := func(rpID, bridge string, extra map[string]any, req string) map[string]any {
		n := map[string]any{"kind": "BRIDGED", "bridge": bridge}
		for k, v := range extra {
			n[k] = v
		}
		return map[string]any{"recovery_point_id": rpID, "mode": "VIRTUALIZE", "memory_mib": 256, "network": n, "request_id": req}
	}

	before := e.quiesce()
	for _, tc := range []struct {
		name  string
		token string
		body  map[string]any
		code  int
		msg   string
	}{
		{"a bridge no host offers", acme, bridged("rp-web", "br-prod", nil, "b1"), 403, "not offered to tenant acme"},
		{"another tenant's bridge", globex, bridged("rp-g", "br-acme", nil, "b2"), 403, "not offered to tenant globex"},
		{"a bridge on hosts that do not hold the recovery point", acme, bridged("rp-db", "br-prod", nil, "b3"), 403, "not offered"},
		{"allow_identity_conflict on an isolated restore", acme, map[string]any{"recovery_point_id": "rp-web", "mode": "VIRTUALIZE", "network": map[string]any{"kind": "ISOLATED", "allow_identity_conflict": true}, "request_id": "b4"}, 400, "only for network.kind BRIDGED"},
		{"a lab on a bridged restore", acme, bridged("rp-web", "br-acme", map[string]any{"lab": "erp"}, "b5"), 400, "only for network.kind ISOLATED"},
		{"a lab that is no DNS label", acme, map[string]any{"recovery_point_id": "rp-web", "mode": "VIRTUALIZE", "network": map[string]any{"kind": "ISOLATED", "lab": "ERP lab"}, "request_id": "b6"}, 400, "network.lab"},
	} {
		code, body := e.rest("POST", "/v1/restores", tc.token, tc.body)
		msg, _ := body["message"].(string)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused restores left %d raft entries", after-before)
	}

	// Its production twin runs: the link is held down, whatever the caller said.
	code, x := e.rest("POST", "/v1/restores", acme, bridged("rp-web", "br-acme", map[string]any{"link_down": false}, "twin"))
	n, _ := x["network"].(map[string]any)
	if code != 200 || x["host_id"] != "kvm-01" || n["link_down"] != true || !strings.Contains(n["link_down_reason"].(string), "web-01") {
		t.Fatalf("a bridged restore of a running machine: HTTP %d %v", code, x)
	}
	id := x["id"].(string)
	a.waitFor("the restore held down", func(as []*restorev1.Assignment) bool {
		for _, as := range as {
			if as.Restore.Id == id {
				return as.Restore.Network.LinkDown
			}
		}
		return false
	})
	if code, _ := e.rest("POST", "/v1/restores/"+id+":link-up", globex, map[string]any{}); code != 404 {
		t.Fatalf("globex brought acme's link up: HTTP %d", code)
	}
	code, up := e.rest("POST", "/v1/restores/"+id+":link-up", acme, map[string]any{})
	if n, _ := up["network"].(map[string]any); code != 200 || n["link_down"] == true {
		t.Fatalf("link up: HTTP %d %v", code, up)
	}
	a.waitFor("the restore's link released", func(as []*restorev1.Assignment) bool {
		for _, as := range as {
			if as.Restore.Id == id {
				return !as.Restore.Network.LinkDown
			}
		}
		return false
	})
	// The caller may say the twin is gone beforehand.
	_, ok := e.rest("POST", "/v1/restores", acme, bridged("rp-web", "br-lab", map[string]any{"allow_identity_conflict": true}, "twin-gone"))
	if n, _ := ok["network"].(map[string]any); n["link_down"] == true {
		t.Fatalf("allow_identity_conflict: %v", ok)
	}

	// A lab: both machines land on one host.
	var hosts []string
	for _, rpID := range []string{"rp-db", "rp-web"} {
		_, r := e.rest("POST", "/v1/restores", acme, map[string]any{"recovery_point_id": rpID, "mode": "VIRTUALIZE", "memory_mib": 256,
			"network": map[string]any{"kind": "ISOLATED", "lab": "erp"}, "request_id": "lab-" + rpID})
		eventually(t, 10*time.Second, "lab restore placed", func() bool {
			_, got := e.rest("GET", "/v1/restores/"+r["id"].(string), acme, nil)
			h, _ := got["host_id"].(string)
			if h != "" {
				hosts = append(hosts, h)
			}
			return h != ""
		})
	}
	if len(hosts) != 2 || hosts[0] != hosts[1] {
		t.Fatalf("the lab's restores are on %v: want one host", hosts)
	}
}
