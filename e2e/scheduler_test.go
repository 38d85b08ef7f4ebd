package e2e

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// A restore that cannot be placed stays PENDING with a reason naming what is
// missing; draining and undraining a host changes where restores go.
func TestPendingRestoresSayWhatIsMissing(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	e.agent("kvm-01", rp("rp-1", "acme", "web"))

	code, body := e.rest("POST", "/v1/hosts/kvm-01:drain", e.admin, nil)
	if code != 200 || body["drained"] != true {
		t.Fatalf("drain: HTTP %d %v", code, body)
	}
	id := e.createRestore(acme, "rp-1", "p-1")
	var reason string
	eventually(t, 5*time.Second, "a pending reason naming the drained host", func() bool {
		_, b := e.rest("GET", "/v1/restores/"+id, acme, nil)
		reason, _ = b["state_reason"].(string)
		return strings.Contains(reason, "kvm-01 (drained)")
	})
	if got := e.restoreState(acme, id); got != "RESTORE_STATE_PENDING" {
		t.Fatalf("state %s, want PENDING", got)
	}

	// Too big for the host: the reason says what is free.
	code, body = e.rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "vcpus": 8, "memory_mib": 256, "request_id": "big",
	})
	if code != 200 {
		t.Fatalf("HTTP %d %v", code, body)
	}
	big := body["id"].(string)

	if code, body := e.rest("POST", "/v1/hosts/kvm-01:undrain", e.admin, nil); code != 200 || body["drained"] != false {
		t.Fatalf("undrain: HTTP %d %v", code, body)
	}
	eventually(t, 5*time.Second, "the small restore to be placed", func() bool {
		return e.restoreState(acme, id) == "RESTORE_STATE_SCHEDULED"
	})
	eventually(t, 5*time.Second, "a capacity reason for the big restore", func() bool {
		_, b := e.rest("GET", "/v1/restores/"+big, acme, nil)
		reason, _ = b["state_reason"].(string)
		return strings.Contains(reason, "has 8 vCPUs and 256 MiB free") && strings.Contains(reason, "kvm-01 has 3 vCPUs")
	})
	// Capacity is accounted from what is placed.
	_, h := e.rest("GET", "/v1/hosts/kvm-01", e.admin, nil)
	if alloc := h["allocated"].(map[string]any); alloc["vcpus"].(float64) != 1 {
		t.Fatalf("allocated %v", alloc)
	}
}

// The room a host's work dir offers overlays is part of its capacity: each
// restore holds its overlay's growth limit (by default its recovery
// point's size), one that could outgrow what is left stays PENDING saying
// so, and it is placed once the agent reports more room.
func TestOverlaysAreHeldToTheRoomTheirHostsWorkDirOffers(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	agent := e.agent("kvm-01", rp("rp-1", "acme", "web")) // a 1 GiB disk
	room := func(mib int64) {
		agent.register(func(r *restorev1.RegisterRequest) { r.Capacity.DiskMib = mib })
	}
	room(1500)
	first := e.createRestore(acme, "rp-1", "d-1")
	eventually(t, 5*time.Second, "the first restore placed", func() bool { return e.restoreState(acme, first) == "RESTORE_STATE_SCHEDULED" })
	_, x := e.rest("GET", "/v1/restores/"+first, acme, nil)
	if x["overlay_limit_mib"] != "1024" {
		t.Fatalf("overlay limit %v, want the recovery point's 1024 MiB", x["overlay_limit_mib"])
	}
	second := e.createRestore(acme, "rp-1", "d-2")
	var reason string
	eventually(t, 5*time.Second, "a reason naming the work dir's room", func() bool {
		_, b := e.rest("GET", "/v1/restores/"+second, acme, nil)
		reason, _ = b["state_reason"].(string)
		return strings.Contains(reason, "has room for an overlay that may grow to 1024 MiB (kvm-01 has 476 MiB left in its work dir for overlays)")
	})
	if got := e.restoreState(acme, second); got != "RESTORE_STATE_PENDING" {
		t.Fatalf("state %s, want PENDING (%s)", got, reason)
	}
	// A smaller limit asked for fits in what is left.
	code, small := e.rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "overlay_limit_mib": 400, "request_id": "d-3"})
	if code != 200 {
		t.Fatalf("HTTP %d %v", code, small)
	}
	eventually(t, 5*time.Second, "the small overlay placed", func() bool {
		return e.restoreState(acme, small["id"].(string)) == "RESTORE_STATE_SCHEDULED"
	})
	_, h := e.rest("GET", "/v1/hosts/kvm-01", e.admin, nil)
	if alloc := h["allocated"].(map[string]any); alloc["disk_mib"] != "1424" {
		t.Fatalf("allocated %v, want 1424 MiB of disk", alloc)
	}
	// The agent finds more room (something else freed space).
	room(4096)
	eventually(t, 5*time.Second, "the waiting restore placed", func() bool { return e.restoreState(acme, second) == "RESTORE_STATE_SCHEDULED" })
}

// A host whose agent stops heartbeating becomes DOWN with one raft write; its
// VIRTUALIZE restores become LOST and its VERIFY restores are placed again.
func TestHostDownLosesVirtualizeAndReplacesVerify(t *testing.T) {
	e := startServer(t, serverOpts{heartbeatTTL: 700 * time.Millisecond})
	acme := e.partner("acme")
	a1 := e.agent("kvm-01", rp("rp-1", "acme", "web"))
	e.rest("POST", "/v1/hosts/kvm-02:drain", e.admin, nil) // not registered yet: 404, ignored

	virt := e.createRestore(acme, "rp-1", "virt")
	code, body := e.rest("POST", "/v1/restores", acme, map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "request_id": "ver"})
	if code != 200 {
		t.Fatalf("HTTP %d %v", code, body)
	}
	verify := body["id"].(string)
	a1.waitFor("both placed on kvm-01", func(as []*restorev1.Assignment) bool { return len(as) == 2 })
	a1.report(virt, restorev1.RestoreState_RESTORE_STATE_RUNNING, nil)

	// A second host that holds the recovery point too, drained for now.
	a2 := e.agent("kvm-02", rp("rp-1", "acme", "web"))
	e.rest("POST", "/v1/hosts/kvm-02:drain", e.admin, nil)
	before := e.quiesce()
	a1.stop() // kvm-01's agent dies

	eventually(t, 5*time.Second, "kvm-01 DOWN", func() bool {
		_, h := e.rest("GET", "/v1/hosts/kvm-01", e.admin, nil)
		return h["state"] == "HOST_STATE_DOWN"
	})
	if got := e.restoreState(acme, virt); got != "RESTORE_STATE_LOST" {
		t.Fatalf("VIRTUALIZE restore is %s, want LOST", got)
	}
	if got := e.restoreState(acme, verify); got != "RESTORE_STATE_PENDING" {
		t.Fatalf("VERIFY restore is %s, want PENDING", got)
	}
	// Exactly one write for DOWN (plus one for the pending reason of the VERIFY restore).
	if writes := e.quiesce() - before; writes > 2 {
		t.Fatalf("%d raft writes for one host going down", writes)
	}
	// Heartbeats alone write nothing.
	idle := e.quiesce()
	time.Sleep(500 * time.Millisecond)
	if e.commitIndex() != idle {
		t.Fatal("heartbeats wrote to raft")
	}
	e.rest("POST", "/v1/hosts/kvm-02:undrain", e.admin, nil)
	a2.waitFor("the VERIFY restore placed again on kvm-02", func(as []*restorev1.Assignment) bool {
		return len(as) == 1 && as[0].Restore.Id == verify
	})
}

// A restore past its expire time becomes EXPIRED, which tells its agent to
// tear it down.
func TestExpiredLeaseTellsTheAgentToTearDown(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	agent := e.agent("kvm-01", rp("rp-1", "acme", "web"))
	code, body := e.rest("POST", "/v1/restores", acme, map[string]any{
		"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "ttl_seconds": 1, "request_id": "short",
	})
	if code != 200 {
		t.Fatalf("HTTP %d %v", code, body)
	}
	id := body["id"].(string)
	agent.waitFor("assigned", func(as []*restorev1.Assignment) bool { return len(as) == 1 })
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_RUNNING, nil)
	agent.waitFor("teardown after the lease", func(as []*restorev1.Assignment) bool {
		return len(as) == 1 && as[0].Desired == restorev1.DesiredState_DESIRED_STATE_DESTROYED &&
			as[0].Restore.State == restorev1.RestoreState_RESTORE_STATE_EXPIRED
	})
	agent.report(id, restorev1.RestoreState_RESTORE_STATE_DESTROYED, nil)
	_, got := e.rest("GET", "/v1/restores/"+id, acme, nil)
	if got["state"] != "RESTORE_STATE_EXPIRED" || got["destroy_time"] == nil {
		t.Fatalf("after teardown: %v", got)
	}
}
