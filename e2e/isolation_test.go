package e2e

import (
	"fmt"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Every endpoint that takes an id answers 404 for another tenant's object,
// exactly as for an id that does not exist, and every list is filtered.
func TestTenantIsolation(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	globex := e.partner("globex")
	agent := e.agent("kvm-01", rp("rp-acme", "acme", "web"), rp("rp-globex", "globex", "db"))
	acmeRestore := e.createRestore(acme, "rp-acme", "a-1")
	globexRestore := e.createRestore(globex, "rp-globex", "g-1")
	agent.waitFor("both restores assigned", func(as []*restorev1.Assignment) bool { return len(as) == 2 })

	endpoints := []struct {
		name   string
		method string
		path   string // %s is the id
		body   any
	}{
		{"get restore", "GET", "/v1/restores/%s", nil},
		{"delete restore", "DELETE", "/v1/restores/%s", nil},
		{"get recovery point", "GET", "/v1/recovery-points/%s", nil},
		{"create restore from recovery point", "POST", "/v1/restores", nil},
	}
	foreign := map[string]string{"restore": globexRestore, "rp": "rp-globex"}
	for _, ep := range endpoints {
		for _, id := range []struct{ kind, foreign, missing string }{
			{"restore", foreign["restore"], "00000000-0000-0000-0000-000000000000"},
			{"rp", foreign["rp"], "rp-missing"},
		} {
			isRP := ep.name == "get recovery point" || ep.name == "create restore from recovery point"
			if isRP != (id.kind == "rp") {
				continue
			}
			t.Run(ep.name, func(t *testing.T) {
				call := func(target string) (int, map[string]any) {
					if ep.method == "POST" {
						return e.rest("POST", "/v1/restores", acme, map[string]any{
							"recovery_point_id": target, "mode": "VERIFY", "request_id": "x-" + target,
						})
					}
					return e.rest(ep.method, fmt.Sprintf(ep.path, target), acme, nil)
				}
				fcode, fbody := call(id.foreign)
				mcode, mbody := call(id.missing)
				if fcode != 404 || mcode != 404 {
					t.Fatalf("foreign id: HTTP %d %v; missing id: HTTP %d %v; want 404 for both", fcode, fbody, mcode, mbody)
				}
				if fbody["code"] != mbody["code"] {
					t.Fatalf("foreign and missing answers differ: %v vs %v", fbody, mbody)
				}
			})
		}
	}
	// Nothing of globex changed.
	if got := e.restoreState(globex, globexRestore); got == "RESTORE_STATE_STOPPING" {
		t.Fatal("acme stopped globex's restore")
	}

	lists := []struct {
		path, key, mine string
	}{
		{"/v1/restores", "restores", acmeRestore},
		{"/v1/recovery-points", "recovery_points", "rp-acme"},
	}
	for _, l := range lists {
		t.Run("list "+l.path, func(t *testing.T) {
			code, body := e.rest("GET", l.path, acme, nil)
			if code != 200 {
				t.Fatalf("HTTP %d %v", code, body)
			}
			items := body[l.key].([]any)
			if len(items) != 1 || items[0].(map[string]any)["id"] != l.mine {
				t.Fatalf("acme's %s list: %v", l.key, items)
			}
			// An admin sees both.
			_, all := e.rest("GET", l.path, e.admin, nil)
			if n := len(all[l.key].([]any)); n != 2 {
				t.Fatalf("admin sees %d, want 2", n)
			}
		})
	}

	t.Run("watch stream", func(t *testing.T) {
		stream, err := e.restores().WatchRestores(e.ctx(acme), &restorev1.WatchRestoresRequest{})
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if first.Restore.Tenant != "acme" {
			t.Fatalf("acme's stream carried %s's restore", first.Restore.Tenant)
		}
	})

	t.Run("partner may not reach operator and admin endpoints", func(t *testing.T) {
		for _, p := range []struct{ method, path string }{
			{"GET", "/v1/hosts"}, {"GET", "/v1/hosts/kvm-01"}, {"POST", "/v1/hosts/kvm-01:drain"},
			{"GET", "/v1/tenants"}, {"POST", "/v1/tenants"}, {"GET", "/v1/tokens"}, {"POST", "/v1/tokens"},
			{"DELETE", "/v1/tokens/tok-x"}, {"GET", "/v1/cluster"},
		} {
			if code, body := e.rest(p.method, p.path, acme, "{}"); code != 403 {
				t.Errorf("%s %s: HTTP %d %v, want 403", p.method, p.path, code, body)
			}
		}
	})
}
