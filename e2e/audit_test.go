package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

type auditRow struct{ caller, tenant, method, outcome, code string }

func (e *env) auditEvents(token, query string) ([]map[string]any, string) {
	e.t.Helper()
	code, body := e.rest("GET", "/v1/audit-events?"+query, token, nil)
	if code != 200 {
		e.t.Fatalf("audit events ?%s: HTTP %d %v", query, code, body)
	}
	var out []map[string]any
	for _, x := range asList(body["events"]) {
		out = append(out, x.(map[string]any))
	}
	next, _ := body["next_page_token"].(string)
	return out, next
}

func rows(evs []map[string]any) []auditRow {
	var out []auditRow
	for _, ev := range evs {
		code, _ := ev["code"].(string)
		tenant, _ := ev["tenant"].(string)
		m := ev["method"].(string)
		out = append(out, auditRow{ev["caller"].(string), tenant, m[strings.LastIndex(m, "/")+1:], ev["outcome"].(string), code})
	}
	return out
}

// Three tenants' calls give exactly the expected audit record: accepted
// writes from the raft log, refusals from the server that refused them;
// an admin sees all of it, each tenant only its own, and no secret is in
// any event.
func TestTheAuditLogSaysWhoDidWhatAndEachTenantSeesItsOwn(t *testing.T) {
	e := startServer(t)
	acme, globex, initech := e.partner("acme"), e.partner("globex"), e.partner("initech")
	tokenID := func(secret string) string {
		_, list := e.rest("GET", "/v1/tokens", e.admin, nil)
		for _, x := range asList(list["tokens"]) {
			tok := x.(map[string]any)
			if strings.HasPrefix(secret, "rst_"+tok["id"].(string)) || strings.Contains(secret, tok["id"].(string)) {
				return tok["id"].(string)
			}
		}
		t.Fatalf("no token for the secret")
		return ""
	}
	ids := map[string]string{"acme": tokenID(acme), "globex": tokenID(globex), "initech": tokenID(initech)}
	e.agent("kvm-01", rp("rp-1", "acme", "web-01"), rp("rp-i", "initech", "erp"))

	id := e.createRestore(acme, "rp-1", "audit-1")
	if code, _ := e.rest("DELETE", "/v1/restores/"+id, globex, nil); code != 404 {
		t.Fatalf("globex deletes acme's restore: HTTP %d", code)
	}
	if code, _ := e.rest("POST", "/v1/restores", initech, map[string]any{"recovery_point_id": "rp-i", "mode": "VIRTUALIZE", "memory_mib": 1, "request_id": "bad"}); code != 400 {
		t.Fatalf("a bad create: HTTP %d", code)
	}
	if code, _ := e.rest("DELETE", "/v1/restores/"+id, acme, nil); code != 200 {
		t.Fatalf("acme deletes its restore: HTTP %d", code)
	}
	if code, _ := e.rest("GET", "/v1/restores", "rst_not-a-token", nil); code != 401 {
		t.Fatalf("a bad token: HTTP %d", code)
	}

	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	restoreCalls := func(token string) []auditRow {
		var out []auditRow
		for _, m := range []string{"CreateRestore", "DeleteRestore"} {
			evs, _ := e.auditEvents(token, q("method", m))
			out = append(out, rows(evs)...)
		}
		return out
	}
	want := []auditRow{
		{"token:" + ids["acme"], "acme", "CreateRestore", "AUDIT_OUTCOME_ACCEPTED", ""},
		{"token:" + ids["initech"], "initech", "CreateRestore", "AUDIT_OUTCOME_REFUSED", "InvalidArgument"},
		{"token:" + ids["globex"], "globex", "DeleteRestore", "AUDIT_OUTCOME_REFUSED", "NotFound"},
		{"token:" + ids["acme"], "acme", "DeleteRestore", "AUDIT_OUTCOME_ACCEPTED", ""},
	}
	got := restoreCalls(e.admin)
	if len(got) != len(want) {
		t.Fatalf("the admin's record of restore calls:\n%v\nwant\n%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %+v, want %+v\nall: %v", i, got[i], want[i], got)
		}
	}
	for tenant, tok := range map[string]string{"acme": acme, "globex": globex, "initech": initech} {
		var mine []auditRow
		for _, w := range want {
			if w.tenant == tenant {
				mine = append(mine, w)
			}
		}
		got := restoreCalls(tok)
		if len(got) != len(mine) {
			t.Fatalf("%s sees %v, want %v", tenant, got, mine)
		}
		all, _ := e.auditEvents(tok, q("page_size", "1000"))
		for _, ev := range all {
			if ev["tenant"] != tenant && ev["target_tenant"] != tenant {
				t.Fatalf("%s sees another tenant's event %v", tenant, ev)
			}
		}
	}
	if code, _ := e.rest("GET", "/v1/audit-events?tenant=acme", globex, nil); code != 404 {
		t.Fatalf("globex asks for acme's events: HTTP %d", code)
	}
	// The refusal of a caller who was not let in names no tenant, only "anonymous".
	anon, _ := e.auditEvents(e.admin, q("outcome", "AUDIT_OUTCOME_REFUSED", "method", "ListRestores"))
	if len(anon) != 1 || anon[0]["caller"] != "anonymous" || anon[0]["code"] != "Unauthenticated" || anon[0]["source"] == "" {
		t.Fatalf("the bad token's refusal: %v", anon)
	}
	// By target, and paged.
	byTarget, _ := e.auditEvents(e.admin, q("target", id))
	if len(byTarget) < 3 {
		t.Fatalf("events naming restore %s: %v", id, rows(byTarget))
	}
	first, next := e.auditEvents(e.admin, q("target", id, "page_size", "1"))
	second, _ := e.auditEvents(e.admin, q("target", id, "page_size", "1", "page_token", next))
	if len(first) != 1 || len(second) != 1 || first[0]["id"] == second[0]["id"] || next == "" {
		t.Fatalf("paging: %v then %v (token %q)", first, second, next)
	}
	// No secret in any event.
	all, _ := e.auditEvents(e.admin, q("page_size", "1000"))
	raw, _ := json.Marshal(all)
	for _, secret := range []string{acme, globex, initech, e.admin} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("a token's secret is in the audit record")
		}
	}
	if out := e.mustCtl(e.admin, "audit", "--method", "DeleteRestore"); !strings.Contains(out, "NotFound") || !strings.Contains(out, ids["globex"]) {
		t.Fatalf("restorectl audit:\n%s", out)
	}
}
