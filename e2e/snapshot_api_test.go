package e2e

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// The snapshot API on its own (no QEMU): a tenant snapshots only its own
// guests; every bad request gets a clear error and writes no raft entry;
// request ids make creates idempotent; the lease releases what nobody did.
func TestSnapshotsBelongToTheirTenantAndRefuseBadInput(t *testing.T) {
	e := startServer(t)
	acme, globex := e.partner("acme"), e.partner("globex")
	backup, _ := e.token("acme", "backup")
	operator, _ := e.token("", "operator")
	agent := e.agent("kvm-snap")
	agent.inventory(&restorev1.HostDomain{Uuid: uuidWeb, Name: "web-01", Running: true})
	_, kvmGuest := e.rest("POST", "/v1/guests", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-snap", "name": "web-01", "tenant": "acme"})
	gid := kvmGuest["id"].(string)

	before := e.quiesce()
	for _, tc := range []struct {
		name  string
		token string
		body  map[string]any
		code  int
		msg   string
	}{
		{"no guest", backup, map[string]any{}, 400, "guest_id is required"},
		{"an unknown guest", backup, map[string]any{"guest_id": "0192f0c4-0000-7000-8000-000000000000"}, 404, "not found"},
		{"another tenant's guest", globex, map[string]any{"guest_id": gid}, 404, "not found"},
		{"a negative lease", backup, map[string]any{"guest_id": gid, "lease_seconds": -5}, 400, "lease_seconds must be 10 to 86400"},
		{"a lease too long", backup, map[string]any{"guest_id": gid, "lease_seconds": 90000}, 400, "lease_seconds must be 10 to 86400"},
		{"an operator token", operator, map[string]any{"guest_id": gid}, 403, ""},
	} {
		code, body := e.rest("POST", "/v1/snapshots", tc.token, tc.body)
		msg, _ := body["message"].(string)
		if code != tc.code || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.msg)) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused snapshots left %d raft entries", after-before)
	}

	code, snap := e.rest("POST", "/v1/snapshots", backup, map[string]any{"guest_id": gid, "quiesce": true, "lease_seconds": 10, "request_id": "nightly-1"})
	if code != 200 || snap["state"] != "SNAPSHOT_STATE_REQUESTED" || snap["host_id"] != "kvm-snap" || snap["lease_expire_time"] == nil {
		t.Fatalf("create: HTTP %d %v", code, snap)
	}
	id := snap["id"].(string)
	if code, again := e.rest("POST", "/v1/snapshots", backup, map[string]any{"guest_id": gid, "quiesce": true, "lease_seconds": 10, "request_id": "nightly-1"}); code != 200 || again["id"] != id {
		t.Fatalf("a retried create: HTTP %d %v", code, again)
	}
	if code, body := e.rest("POST", "/v1/snapshots", backup, map[string]any{"guest_id": gid, "request_id": "nightly-1"}); code != 409 {
		t.Fatalf("a request id reused for another body: HTTP %d %v", code, body)
	}
	if code, body := e.rest("POST", "/v1/snapshots", acme, map[string]any{"guest_id": gid}); code != 400 || !strings.Contains(body["message"].(string), "has snapshot "+id) {
		t.Fatalf("a second snapshot of the guest: HTTP %d %v", code, body)
	}
	if code, body := e.rest("DELETE", "/v1/guests/"+gid, operator, nil); code != 400 || !strings.Contains(body["message"].(string), "release it") {
		t.Fatalf("unregistering a guest with an active snapshot: HTTP %d %v", code, body)
	}
	for _, path := range []string{"/v1/snapshots/" + id, "/v1/snapshots/" + id + "/disks/vda/extents"} {
		if code, _ := e.rest("GET", path, globex, nil); code != 404 {
			t.Errorf("globex GET %s: HTTP %d", path, code)
		}
	}
	if code, _ := e.rest("DELETE", "/v1/snapshots/"+id, globex, nil); code != 404 {
		t.Errorf("globex released acme's snapshot: HTTP %d", code)
	}
	if _, list := e.rest("GET", "/v1/snapshots", globex, nil); list["snapshots"] != nil && len(list["snapshots"].([]any)) != 0 {
		t.Errorf("globex lists acme's snapshots: %v", list)
	}
	if code, body := e.rest("GET", "/v1/snapshots/"+id+"/disks/vda/extents", acme, nil); code != 400 || !strings.Contains(body["message"].(string), "only while it is READY") {
		t.Errorf("extents before READY: HTTP %d %v", code, body)
	}
	if code, body := e.rest("DELETE", "/v1/snapshots/"+id+"?backup_completed=true", acme, nil); code != 400 || !strings.Contains(body["message"].(string), "only from a READY snapshot") {
		t.Errorf("completing a snapshot never READY: HTTP %d %v", code, body)
	}

	// The host's agent sees the snapshot with its guest; nobody releases
	// it, so the lease does, and the agent is told to release it.
	assigned := func(cond func(*restorev1.SnapshotAssignment) bool) func([]*restorev1.SnapshotAssignment) bool {
		return func(ss []*restorev1.SnapshotAssignment) bool {
			for _, a := range ss {
				if a.Snapshot.Id == id && cond(a) {
					return true
				}
			}
			return false
		}
	}
	agent.waitForSnapshots("the snapshot with its guest", 10*time.Second, assigned(func(a *restorev1.SnapshotAssignment) bool {
		return a.Guest.GetName() == "web-01" && !a.Release
	}))
	agent.waitForSnapshots("the lease asks for the release", 30*time.Second, assigned(func(a *restorev1.SnapshotAssignment) bool { return a.Release }))
	_, got := e.rest("GET", "/v1/snapshots/"+id, acme, nil)
	if got["release_requested"] != true || !strings.Contains(got["state_reason"].(string), "lease ran out") {
		t.Fatalf("after the lease: %v", got)
	}
}
