package e2e

import (
	"strings"
	"testing"
)

// Protected guests (the backup jobs' side): registered to a tenant, seen
// only by it, refused with a clear message and no raft entry when wrong.
func TestGuestsBelongToTheirTenant(t *testing.T) {
	e := startServer(t)
	acme, globex := e.partner("acme"), e.partner("globex")
	backup, _ := e.token("acme", "backup")

	code, kvmGuest := e.rest("POST", "/v1/guests", backup, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "web-01"})
	if code != 200 || kvmGuest["tenant"] != "acme" || kvmGuest["hypervisor"] != "HYPERVISOR_KVM" || kvmGuest["id"] == "" {
		t.Fatalf("register KVM guest: HTTP %d %v", code, kvmGuest)
	}
	code, vm := e.rest("POST", "/v1/guests", acme, map[string]any{"hypervisor": "VMWARE", "vcenter": "vc.example.test", "moref": "vm-42"})
	if code != 200 || vm["moref"] != "vm-42" {
		t.Fatalf("register VMware guest: HTTP %d %v", code, vm)
	}
	id := kvmGuest["id"].(string)
	if code, _ := e.rest("GET", "/v1/guests/"+id, globex, nil); code != 404 {
		t.Fatalf("globex sees acme's guest: HTTP %d", code)
	}
	if code, _ := e.rest("DELETE", "/v1/guests/"+id, globex, nil); code != 404 {
		t.Fatalf("globex unregistered acme's guest: HTTP %d", code)
	}
	if code, list := e.rest("GET", "/v1/guests", globex, nil); code != 200 || list["guests"] != nil && len(list["guests"].([]any)) != 0 {
		t.Fatalf("globex lists acme's guests: %v", list)
	}
	if code, list := e.rest("GET", "/v1/guests", acme, nil); code != 200 || len(list["guests"].([]any)) != 2 {
		t.Fatalf("acme's guests: HTTP %d %v", code, list)
	}

	before := e.quiesce()
	for _, tc := range []struct {
		name string
		body map[string]any
		code int
		msg  string
	}{
		{"no hypervisor", map[string]any{"host_id": "kvm-01", "name": "x"}, 400, "hypervisor is required"},
		{"unknown hypervisor", map[string]any{"hypervisor": "XEN", "host_id": "kvm-01", "name": "x"}, 400, "hypervisor"},
		{"KVM without a host", map[string]any{"hypervisor": "KVM", "name": "x"}, 400, "needs host_id"},
		{"KVM without a name or uuid", map[string]any{"hypervisor": "KVM", "host_id": "kvm-01"}, 400, "needs name or uuid"},
		{"KVM with a moref", map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "x", "moref": "vm-1"}, 400, "for VMWARE guests"},
		{"VMware without a vCenter", map[string]any{"hypervisor": "VMWARE", "moref": "vm-1"}, 400, "needs vcenter"},
		{"VMware with a bad moref", map[string]any{"hypervisor": "VMWARE", "vcenter": "vc", "moref": "VM 1"}, 400, "managed object id"},
		{"a bad uuid", map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "uuid": "nope"}, 400, "must be a UUID"},
		{"another tenant named by a partner", map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "x", "tenant": "globex"}, 404, "not found"},
		{"the same guest twice", map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "web-01"}, 409, "registered already as " + id},
	} {
		code, body := e.rest("POST", "/v1/guests", acme, tc.body)
		if code != tc.code || !strings.Contains(strings.ToLower(body["message"].(string)), strings.ToLower(tc.msg)) {
			t.Errorf("%s: HTTP %d %v, want %d with %q", tc.name, code, body["message"], tc.code, tc.msg)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused registrations left %d raft entries", after-before)
	}
	// The same through restorectl.
	if out := e.mustCtl(backup, "guest", "list"); !strings.Contains(out, "web-01") || !strings.Contains(out, "vm-42") {
		t.Fatalf("restorectl guest list:\n%s", out)
	}
	if out, errOut, code := e.restorectl(globex, "guest", "get", id); code == 0 || !strings.Contains(errOut+out, "not found") {
		t.Fatalf("restorectl guest get as globex: exit %d %s%s", code, out, errOut)
	}
	if code, _ := e.rest("DELETE", "/v1/guests/"+id, acme, nil); code != 200 {
		t.Fatalf("unregister: HTTP %d", code)
	}
	if code, _ := e.rest("GET", "/v1/guests/"+id, acme, nil); code != 404 {
		t.Fatalf("an unregistered guest is still there: HTTP %d", code)
	}
}
