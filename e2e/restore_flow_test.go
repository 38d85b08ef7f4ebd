package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// A partner creates a restore over REST; the agent receives it, boots it and
// reports RUNNING; the partner sees it over REST and gRPC; deleting it makes
// the agent tear it down.
func TestPartnerRestoreLifecycleAcrossRESTAndGRPC(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	agent := e.agent("kvm-01", rp("rp-web-1", "acme", "web-01"))

	id := e.createRestore(acme, "rp-web-1", "req-1")

	as := agent.waitFor("the new restore to be assigned", func(as []*restorev1.Assignment) bool {
		return len(as) == 1 && as[0].Restore.Id == id
	})
	if as[0].Desired != restorev1.DesiredState_DESIRED_STATE_RUNNING {
		t.Fatalf("desired %v, want RUNNING", as[0].Desired)
	}
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_PREPARING, nil)
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_BOOTING, nil)
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_RUNNING, &restorev1.Boot{Verified: true, TimeToBootMs: 5900, Signals: []string{"serial"}})

	code, body := e.rest("GET", "/v1/restores/"+id, acme, nil)
	if code != 200 || body["state"] != "RESTORE_STATE_RUNNING" || body["host_id"] != "kvm-01" {
		t.Fatalf("REST view: HTTP %d %v", code, body)
	}
	boot := body["boot"].(map[string]any)
	if boot["verified"] != true || boot["time_to_boot_ms"] != "5900" {
		t.Fatalf("boot section %v", boot)
	}
	g, err := e.restores().GetRestore(e.ctx(acme), &restorev1.GetRestoreRequest{Id: id})
	if err != nil || g.Restore.State != restorev1.RestoreState_RESTORE_STATE_RUNNING {
		t.Fatalf("gRPC view: %v %v", g, err)
	}

	code, body = e.rest("DELETE", "/v1/restores/"+id, acme, nil)
	if code != 200 || body["state"] != "RESTORE_STATE_STOPPING" {
		t.Fatalf("delete: HTTP %d %v", code, body)
	}
	agent.waitFor("teardown to be asked", func(as []*restorev1.Assignment) bool {
		return len(as) == 1 && as[0].Desired == restorev1.DesiredState_DESIRED_STATE_DESTROYED
	})
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_DESTROYED, nil)
	if got := e.restoreState(acme, id); got != "RESTORE_STATE_DESTROYED" {
		t.Fatalf("after teardown: %s", got)
	}
	agent.waitFor("nothing left to do", func(as []*restorev1.Assignment) bool { return len(as) == 0 })
}

// The portal's live view: GET /v1/restores:watch streams newline-delimited
// JSON as the restore moves through its states.
func TestWatchRestoresStreamsChangesOverREST(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	agent := e.agent("kvm-01", rp("rp-1", "acme", "web"))

	req, _ := http.NewRequest("GET", e.base+"/v1/restores:watch", nil)
	req.Header.Set("Authorization", "Bearer "+acme)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("watch: HTTP %d", resp.StatusCode)
	}
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()

	id := e.createRestore(acme, "rp-1", "w-1")
	agent.waitFor("assignment", func(as []*restorev1.Assignment) bool { return len(as) == 1 })
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_RUNNING, &restorev1.Boot{Verified: true})

	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["RESTORE_STATE_RUNNING"] {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatal("stream closed early")
			}
			r := m["result"].(map[string]any)["restore"].(map[string]any)
			if r["id"] != id {
				t.Fatalf("stream carried another restore: %v", r)
			}
			seen[r["state"].(string)] = true
		case <-deadline:
			t.Fatalf("states seen: %v; RUNNING never arrived", seen)
		}
	}
	if !seen["RESTORE_STATE_PENDING"] && !seen["RESTORE_STATE_SCHEDULED"] {
		t.Fatalf("the stream skipped the early states: %v", seen)
	}
}

// Revoking a token stops it at once, including on an open watch stream.
func TestRevokedTokenStopsWorkingAtOnceIncludingOpenStreams(t *testing.T) {
	e := startServer(t)
	e.tenant("acme")
	secret, id := e.token("acme", "partner")
	stream, err := e.restores().WatchRestores(e.ctx(secret), &restorev1.WatchRestoresRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admins().RevokeToken(e.ctx(e.admin), &restorev1.RevokeTokenRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !strings.Contains(err.Error(), "Unauthenticated") {
			t.Fatalf("stream ended with %v, want Unauthenticated", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the open stream survived the revocation")
	}
	if code, _ := e.rest("GET", "/v1/restores", secret, nil); code != 401 {
		t.Fatalf("revoked token: HTTP %d, want 401", code)
	}
}

// The same request_id with the same body returns the first restore; with
// another body it is a conflict; neither writes to raft.
func TestCreateIsIdempotentByRequestID(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	e.agent("kvm-01", rp("rp-1", "acme", "web"))
	first := e.createRestore(acme, "rp-1", "same")
	before := e.quiesce()

	again := e.createRestore(acme, "rp-1", "same")
	if again != first {
		t.Fatalf("same request_id and body gave %s, want %s", again, first)
	}
	// lowerCamelCase is accepted as the same body.
	code, body := e.rest("POST", "/v1/restores", acme, `{"recoveryPointId":"rp-1","mode":"MODE_VIRTUALIZE","vcpus":1,"memoryMib":256,"ttlSeconds":3600,"requestId":"same"}`)
	if code != 200 || body["id"] != first {
		t.Fatalf("camelCase replay: HTTP %d %v", code, body)
	}
	code, body = e.rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 2, "memory_mib": 256, "ttl_seconds": 3600, "request_id": "same",
	})
	if code != 409 || !strings.Contains(body["message"].(string), "different body") {
		t.Fatalf("conflict: HTTP %d %v", code, body)
	}
	if after := e.commitIndex(); after != before {
		t.Fatalf("commit index moved from %d to %d", before, after)
	}
}
