package e2e

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// Hosts say what their hypervisor can do; the API shows it, and a request
// a host cannot serve is refused before raft with the capability named.
func TestRequestsAHostCannotServeAreRefusedNamingTheCapability(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	operator, _ := e.token("", "operator")
	// vc-01 takes snapshots but boots nothing; tiny boots restores but has
	// no screen, console or snapshots; kvm-01 (an agent that reports no
	// capabilities, from before they were reported) can do everything.
	vc := e.agent("vc-01", rp("rp-v", "acme", "web"))
	vc.declare(restorev1.HostCapability_HOST_CAPABILITY_SNAPSHOTS, restorev1.HostCapability_HOST_CAPABILITY_QUIESCE, restorev1.HostCapability_HOST_CAPABILITY_CHANGED_BLOCKS)
	tiny := e.agent("tiny", rp("rp-t", "acme", "app"))
	tiny.declare(restorev1.HostCapability_HOST_CAPABILITY_RESTORES, 99) // 99: a newer agent's capability, ignored
	tiny.inventory(&restorev1.HostDomain{Uuid: "4c4c4544-0042-3510-8053-b4c04f4e3099", Name: "app-01", Running: true})
	e.agent("kvm-01", rp("rp-k", "acme", "db"))

	_, hosts := e.rest("GET", "/v1/hosts", e.admin, nil)
	caps := map[string]int{}
	for _, h := range hosts["hosts"].([]any) {
		h := h.(map[string]any)
		list, _ := h["capabilities"].([]any)
		caps[h["id"].(string)] = len(list)
	}
	if caps["vc-01"] != 3 || caps["tiny"] != 1 || caps["kvm-01"] != 12 {
		t.Fatalf("capabilities per host: %v", caps)
	}

	// tiny boots a restore; the test agent reports it BOOTING.
	id := e.createRestore(acme, "rp-t", "tiny-1")
	tiny.waitFor("the restore on tiny", func(as []*restorev1.Assignment) bool { return len(as) == 1 })
	tiny.report(id, restorev1.RestoreState_RESTORE_STATE_BOOTING, nil)
	code, guest := e.rest("POST", "/v1/guests", operator, map[string]any{"hypervisor": "VMWARE", "host_id": "tiny", "name": "app-01", "tenant": "acme"})
	if code != 200 {
		t.Fatalf("register app-01: HTTP %d %v", code, guest)
	}

	before := e.quiesce()
	for _, c := range []struct {
		name, method, path string
		body               any
		says               string
	}{
		{"a restore of a recovery point only vc-01 holds", "POST", "/v1/restores",
			map[string]any{"recovery_point_id": "rp-v", "mode": "VIRTUALIZE", "memory_mib": 256, "request_id": "vc-1"}, "host vc-01 cannot boot restores: its hypervisor lacks the restores capability"},
		{"an export of a recovery point only vc-01 holds", "POST", "/v1/restores",
			map[string]any{"recovery_point_id": "rp-v", "mode": "EXPORT", "request_id": "vc-2"}, "host vc-01 cannot serve exports: its hypervisor lacks the exports capability"},
		{"an image of a recovery point only vc-01 holds", "POST", "/v1/recovery-points/rp-v:export-image",
			map[string]any{"format": "VMDK", "request_id": "vc-3"}, "host vc-01 cannot make image files: its hypervisor lacks the images capability"},
		{"a screenshot on tiny", "GET", "/v1/restores/" + id + "/screenshot", nil, "lacks the screenshots capability"},
		{"a console on tiny", "POST", "/v1/restores/" + id + "/console", map[string]any{}, "lacks the console capability"},
		{"a snapshot of a guest on tiny", "POST", "/v1/snapshots", map[string]any{"guest_id": guest["id"], "lease_seconds": 600}, "lacks the snapshots capability"},
	} {
		code, body := e.rest(c.method, c.path, acme, c.body)
		msg, _ := body["message"].(string)
		if code != 400 || !strings.Contains(msg, c.says) {
			t.Errorf("%s: HTTP %d %v, want 400 saying %q", c.name, code, body, c.says)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused requests moved the commit index %d → %d", before, after)
	}
	out := e.mustCtl(e.admin, "host", "list")
	for _, want := range []string{"CAPABILITIES", "snapshots,quiesce,changed-blocks", "vmware", "restores,instant-restores,screenshots,console,guest-agent,snapshots,quiesce,changed-blocks"} {
		if !strings.Contains(out, want) {
			t.Fatalf("host list lacks %q:\n%s", want, out)
		}
	}
}
