package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// A batch of restores (a site) is validated as a whole before raft: one
// bad item, or one over the quota, refuses the batch with the item named
// and writes nothing. A good batch is one entry; its items are spread
// across the two hosts that hold them within their capacity, the rest wait
// PENDING and start as capacity frees; a replay answers the first batch
// and another body under its request id is a conflict.
func TestABatchIsAllOrNoneAndFillsTheHostsThatHoldItsRecoveryPoints(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	globex := e.partner("globex")
	// Each host has 4 vCPUs: two items of 2 vCPUs each fit on it.
	a := e.agent("h-a", rp("rp-a1", "acme", "web"), rp("rp-a2", "acme", "app"), rp("rp-s", "acme", "db"))
	b := e.agent("h-b", rp("rp-b1", "acme", "mail"), rp("rp-s", "acme", "db"), rp("rp-g", "globex", "erp"))
	item := func(rpID string) map[string]any {
		return map[string]any{"recovery_point_id": rpID, "mode": "VIRTUALIZE", "vcpus": 2, "memory_mib": 512}
	}
	site := []any{item("rp-a1"), item("rp-a2"), item("rp-b1"), item("rp-s"), item("rp-s"), item("rp-s")}

	before := e.quiesce()
	for _, c := range []struct {
		name string
		body map[string]any
		code int
		says string
	}{
		{"another tenant's recovery point", map[string]any{"request_id": "bad-1", "items": append(append([]any{}, site[:2]...), item("rp-g"))}, 404, `items[2]: recovery point "rp-g" not found`},
		{"an item with too many vCPUs", map[string]any{"request_id": "bad-2", "items": []any{item("rp-a1"), map[string]any{"recovery_point_id": "rp-b1", "mode": "VIRTUALIZE", "vcpus": 65}}}, 400, "items[1]: vcpus must be between 1 and 64"},
		{"an item with its own request id", map[string]any{"request_id": "bad-3", "items": []any{map[string]any{"recovery_point_id": "rp-a1", "mode": "VIRTUALIZE", "request_id": "x"}}}, 400, "items[0].request_id: leave it out"},
		{"no items", map[string]any{"request_id": "bad-4", "items": []any{}}, 400, "a batch has 1 to 100 items"},
		{"101 items", map[string]any{"request_id": "bad-5", "items": func() []any {
			var many []any
			for i := 0; i < 101; i++ {
				many = append(many, item("rp-a1"))
			}
			return many
		}()}, 400, "a batch has 1 to 100 items, not 101"},
		{"no request id", map[string]any{"items": site}, 400, "request_id is required"},
	} {
		code, body := e.rest("POST", "/v1/restores:batchCreate", acme, c.body)
		if code != c.code || !strings.Contains(fmt.Sprint(body["message"]), c.says) {
			t.Errorf("%s: HTTP %d %v, want %d saying %q", c.name, code, body, c.code, c.says)
		}
	}
	// The quota counts the batch's own items.
	if code, _ := e.rest("PUT", "/v1/tenants/acme/quota", e.admin, map[string]any{"max_restores": 5}); code != 200 {
		t.Fatal("set the quota")
	}
	mid := e.quiesce()
	if code, body := e.rest("POST", "/v1/restores:batchCreate", acme, map[string]any{"request_id": "over", "items": site}); code != 429 || !strings.Contains(fmt.Sprint(body["message"]), "items[5]") {
		t.Fatalf("a batch over the quota: HTTP %d %v", code, body)
	}
	if after := e.quiesce(); after != mid || mid != before+1 {
		t.Fatalf("refused batches moved the commit index: %d → %d → %d (the quota is one entry)", before, mid, after)
	}
	if _, list := e.rest("GET", "/v1/restores", acme, nil); len(list["restores"].([]any)) != 0 {
		t.Fatalf("refused batches left restores: %v", list)
	}
	if code, _ := e.rest("PUT", "/v1/tenants/acme/quota", e.admin, map[string]any{}); code != 200 {
		t.Fatal("clear the quota")
	}

	// The site: four placed (two per host), two waiting.
	code, out := e.rest("POST", "/v1/restores:batchCreate", acme, map[string]any{"request_id": "site-a", "items": site})
	if code != 200 || len(out["restores"].([]any)) != 6 {
		t.Fatalf("batch: HTTP %d %v", code, out)
	}
	batchID := out["batch_id"].(string)
	perHost := map[string]int{}
	var ids []string
	for i, x := range out["restores"].([]any) {
		x := x.(map[string]any)
		ids = append(ids, x["id"].(string))
		if x["batch_id"] != batchID || x["request_id"] != fmt.Sprintf("site-a#%d", i) || x["recovery_point_id"] != site[i].(map[string]any)["recovery_point_id"] {
			t.Fatalf("item %d: %v", i, x)
		}
		perHost[fmt.Sprint(x["host_id"])]++
	}
	if perHost["h-a"] != 2 || perHost["h-b"] != 2 {
		t.Fatalf("placements per host: %v", perHost)
	}
	_, listed := e.rest("GET", "/v1/restores?batch_id="+batchID, acme, nil)
	if len(listed["restores"].([]any)) != 6 {
		t.Fatalf("GET ?batch_id= lists %d", len(listed["restores"].([]any)))
	}
	_, pending := e.rest("GET", "/v1/restores?batch_id="+batchID+"&state=PENDING", acme, nil)
	if ps := pending["restores"].([]any); len(ps) != 2 || !strings.Contains(fmt.Sprint(ps[0].(map[string]any)["state_reason"]), "free") {
		t.Fatalf("the waiting items: %v", ps)
	}
	// A replay answers the same batch; another body is a conflict.
	if code, again := e.rest("POST", "/v1/restores:batchCreate", acme, map[string]any{"request_id": "site-a", "items": site}); code != 200 || again["batch_id"] != batchID {
		t.Fatalf("replay: HTTP %d %v", code, again)
	}
	if code, _ := e.rest("POST", "/v1/restores:batchCreate", acme, map[string]any{"request_id": "site-a", "items": site[:5]}); code != 409 {
		t.Fatalf("the same request id with other items: HTTP %d, want 409", code)
	}
	if code, g := e.rest("GET", "/v1/restores?batch_id="+batchID, globex, nil); code != 200 || len(g["restores"].([]any)) != 0 {
		t.Fatalf("globex lists acme's batch: HTTP %d %v", code, g)
	}

	// The hosts run theirs; one on h-a is deleted; a waiting one starts there.
	run := func(ag *testAgent, n int) []string {
		as := ag.waitFor(fmt.Sprintf("%d restores on %s", n, ag.host), func(as []*restorev1.Assignment) bool { return len(as) == n })
		var got []string
		for _, x := range as {
			if x.Restore.State == restorev1.RestoreState_RESTORE_STATE_SCHEDULED {
				ag.report(x.Restore.Id, restorev1.RestoreState_RESTORE_STATE_PREPARING, nil)
				ag.report(x.Restore.Id, restorev1.RestoreState_RESTORE_STATE_BOOTING, nil)
				ag.report(x.Restore.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING, &restorev1.Boot{Verified: true})
			}
			got = append(got, x.Restore.Id)
		}
		return got
	}
	onA := run(a, 2)
	run(b, 2)
	if code, _ := e.rest("DELETE", "/v1/restores/"+onA[0], acme, nil); code != 200 {
		t.Fatal("delete")
	}
	a.waitFor("the teardown on h-a", func(as []*restorev1.Assignment) bool {
		for _, x := range as {
			if x.Restore.Id == onA[0] && x.Desired == restorev1.DesiredState_DESIRED_STATE_DESTROYED {
				return true
			}
		}
		return false
	})
	a.report(onA[0], restorev1.RestoreState_RESTORE_STATE_DESTROYED, nil)
	eventually(t, 30e9, "a waiting item of the batch placed on h-a", func() bool {
		_, p := e.rest("GET", "/v1/restores?batch_id="+batchID+"&state=PENDING", acme, nil)
		return len(p["restores"].([]any)) == 1
	})
	if got := e.restoreState(acme, ids[0]); got != "RESTORE_STATE_DESTROYED" && ids[0] == onA[0] {
		t.Fatalf("the deleted item is %s", got)
	}

	// restorectl: a site file, as a batch.
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(path, []byte("request_id: site-b\nitems:\n  - {recovery_point: rp-b1, memory_mib: 128}\n  - {recovery_point: rp-a2, vcpus: 1, ttl: 2h}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctlOut := e.mustCtl(acme, "restore", "create", "--from-file", path)
	if strings.Count(ctlOut, "VIRTUALIZE") != 2 || !strings.Contains(ctlOut, "rp-b1") || !strings.Contains(ctlOut, "rp-a2") {
		t.Fatalf("restorectl restore create --from-file:\n%s", ctlOut)
	}
	if _, errOut, code := e.restorectl(acme, "restore", "create", "--from-file", path, "--vcpus", "2"); code == 0 || !strings.Contains(errOut, "give no other restore flags") {
		t.Fatalf("--from-file with --vcpus: exit %d %s", code, errOut)
	}
}
