package e2e

import (
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

const (
	uuidWeb  = "4c4c4544-0042-3510-8053-b4c04f4e3032"
	uuidDB   = "4c4c4544-0042-3510-8053-b4c04f4e3033"
	uuidProd = "4c4c4544-0042-3510-8053-b4c04f4e3034"
)

// A guest is a domain its host reports, owned by one tenant: an operator
// assigns it (or the hoster, in the domain's XML). Tried as a hostile
// tenant would: registering someone else's domain, a restore domain, a
// domain no host reports — each refused, no raft entry.
func TestGuestsAreDomainsTheirHostReportsWithOneOwner(t *testing.T) {
	e := startServer(t)
	acme, globex := e.partner("acme"), e.partner("globex")
	backup, _ := e.token("acme", "backup")
	operator, _ := e.token("", "operator")
	agent := e.agent("kvm-01")
	agent.inventory(
		&restorev1.HostDomain{Uuid: uuidWeb, Name: "web-01", Running: true, Disks: []string{"vda"}},
		&restorev1.HostDomain{Uuid: uuidDB, Name: "db-01"},
		&restorev1.HostDomain{Uuid: uuidProd, Name: "prod-01", OwnerTenant: "globex"}, // the hoster's tag
	)

	code, web := e.rest("POST", "/v1/guests", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "web-01", "tenant": "acme"})
	if code != 200 || web["tenant"] != "acme" || web["uuid"] != uuidWeb || web["state"] != "GUEST_STATE_VERIFIED" {
		t.Fatalf("the operator assigns web-01 to acme: HTTP %d %v", code, web)
	}
	id := web["id"].(string)
	if code, list := e.rest("GET", "/v1/guests", globex, nil); code != 200 || len(list["guests"].([]any)) != 1 ||
		list["guests"].([]any)[0].(map[string]any)["name"] != "prod-01" {
		t.Fatalf("globex's guests (prod-01, tagged by the hoster): HTTP %d %v", code, list)
	}

	before := e.quiesce()
	for _, tc := range []struct {
		name  string
		token string
		body  map[string]any
		code  int
		msg   string
	}{
		{"a partner registers a guest", acme, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "db-01"}, 403, "may not call"},
		{"a backup job registers a guest", backup, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "db-01"}, 403, "may not call"},
		{"another tenant's domain, by name", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "web-01", "tenant": "globex"}, 400, "another tenant's guest"},
		{"another tenant's domain, by UUID", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "uuid": uuidWeb, "tenant": "globex"}, 400, "another tenant's guest"},
		{"the hoster's tagged domain for another tenant", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "prod-01", "tenant": "acme"}, 400, "another tenant's guest"},
		{"a restore domain", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "restored-01a21630-0000-7000-8000-0000000000a1", "tenant": "acme"}, 400, "never guests"},
		{"a domain no host reports", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "mail-01", "tenant": "acme"}, 400, "reports no domain"},
		{"a host never seen", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-99", "name": "web-01", "tenant": "acme"}, 400, "not registered"},
		{"a UUID under another name", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "uuid": uuidDB, "name": "web-01", "tenant": "acme"}, 400, "is named"},
		{"a VMware guest on a KVM host", operator, map[string]any{"hypervisor": "VMWARE", "host_id": "kvm-01", "moref": "vm-42", "tenant": "acme"}, 400, "host kvm-01 runs kvm, not vmware"},
		{"a Hyper-V guest on a KVM host", operator, map[string]any{"hypervisor": "HYPERV", "host_id": "kvm-01", "name": "x", "tenant": "acme"}, 400, "host kvm-01 runs kvm, not hyperv"},
		{"VMware without a host", operator, map[string]any{"hypervisor": "VMWARE", "moref": "vm-42", "tenant": "acme"}, 400, "needs host_id"},
		{"VMware without a uuid, moref or name", operator, map[string]any{"hypervisor": "VMWARE", "host_id": "kvm-01", "tenant": "acme"}, 400, "needs uuid"},
		{"the same guest twice", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "web-01", "tenant": "acme"}, 409, "registered already as guest " + id},
		{"no tenant", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "db-01"}, 400, "tenant is required"},
		{"no hypervisor", operator, map[string]any{"host_id": "kvm-01", "name": "x", "tenant": "acme"}, 400, "hypervisor is required"},
		{"unknown hypervisor", operator, map[string]any{"hypervisor": "XEN", "host_id": "kvm-01", "name": "x", "tenant": "acme"}, 400, "hypervisor"},
		{"KVM without a host", operator, map[string]any{"hypervisor": "KVM", "name": "x", "tenant": "acme"}, 400, "needs host_id"},
		{"KVM without a name or uuid", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "tenant": "acme"}, 400, "needs name or uuid"},
		{"KVM with a moref", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "name": "x", "moref": "vm-1", "tenant": "acme"}, 400, "for VMWARE guests"},
		{"VMware with a bad moref", operator, map[string]any{"hypervisor": "VMWARE", "host_id": "kvm-01", "moref": "VM 1", "tenant": "acme"}, 400, "managed object id"},
		{"a bad uuid", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-01", "uuid": "nope", "tenant": "acme"}, 400, "must be a UUID"},
	} {
		code, body := e.rest("POST", "/v1/guests", tc.token, tc.body)
		msg, _ := body["message"].(string)
		if code != tc.code || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.msg)) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	for _, tok := range []string{acme, globex} {
		if code, _ := e.rest("DELETE", "/v1/guests/"+id, tok, nil); code != 403 {
			t.Errorf("a partner unregistered a guest: HTTP %d", code)
		}
	}
	if after := e.quiesce(); after != before {
		t.Fatalf("refused registrations left %d raft entries", after-before)
	}
	if code, _ := e.rest("GET", "/v1/guests/"+id, globex, nil); code != 404 {
		t.Fatalf("globex sees acme's guest: HTTP %d", code)
	}
	if code, list := e.rest("GET", "/v1/guests", acme, nil); code != 200 || len(list["guests"].([]any)) != 1 {
		t.Fatalf("acme's guests: HTTP %d %v", code, list)
	}
	// The same report again writes nothing.
	agent.inventory(
		&restorev1.HostDomain{Uuid: uuidWeb, Name: "web-01", Running: true, Disks: []string{"vda"}},
		&restorev1.HostDomain{Uuid: uuidDB, Name: "db-01"},
		&restorev1.HostDomain{Uuid: uuidProd, Name: "prod-01", OwnerTenant: "globex"},
	)
	if after := e.quiesce(); after != before {
		t.Fatalf("an unchanged inventory wrote %d raft entries", after-before)
	}
	// The operator's view: every domain and who owns it.
	if out := e.mustCtl(operator, "host", "domains", "kvm-01"); !strings.Contains(out, "web-01") || !strings.Contains(out, id) || !strings.Contains(out, "globex") {
		t.Fatalf("restorectl host domains:\n%s", out)
	}
	// Renamed on the host: the same guest. Gone: UNVERIFIED, no snapshot.
	agent.inventory(&restorev1.HostDomain{Uuid: uuidWeb, Name: "web-01-renamed"}, &restorev1.HostDomain{Uuid: uuidProd, Name: "prod-01", OwnerTenant: "globex"})
	if _, g := e.rest("GET", "/v1/guests/"+id, acme, nil); g["name"] != "web-01-renamed" || g["state"] != "GUEST_STATE_VERIFIED" {
		t.Fatalf("after the rename: %v", g)
	}
	agent.inventory(&restorev1.HostDomain{Uuid: uuidProd, Name: "prod-01", OwnerTenant: "globex"})
	if _, g := e.rest("GET", "/v1/guests/"+id, acme, nil); g["state"] != "GUEST_STATE_UNVERIFIED" {
		t.Fatalf("after the domain went: %v", g)
	}
	if code, body := e.rest("POST", "/v1/snapshots", acme, map[string]any{"guest_id": id}); code != 400 || !strings.Contains(body["message"].(string), "UNVERIFIED") {
		t.Fatalf("a snapshot of a guest whose domain is gone: HTTP %d %v", code, body)
	}
	if out := e.mustCtl(acme, "guest", "list"); !strings.Contains(out, "UNVERIFIED") {
		t.Fatalf("restorectl guest list:\n%s", out)
	}
	if out, errOut, code := e.restorectl(globex, "guest", "get", id); code == 0 || !strings.Contains(errOut+out, "not found") {
		t.Fatalf("restorectl guest get as globex: exit %d %s%s", code, out, errOut)
	}
	if code, _ := e.rest("DELETE", "/v1/guests/"+id, operator, nil); code != 200 {
		t.Fatalf("the operator unregisters: HTTP %d", code)
	}
	if code, _ := e.rest("GET", "/v1/guests/"+id, acme, nil); code != 404 {
		t.Fatalf("an unregistered guest is still there: HTTP %d", code)
	}
}
