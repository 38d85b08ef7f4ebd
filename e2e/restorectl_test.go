package e2e

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/cli"
	"google.golang.org/protobuf/encoding/protojson"
)

// restorectl runs the CLI in process against the server.
func (e *env) restorectl(token string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--addr", e.srv.GRPCAddr(), "--ca-cert", e.ca, "--token", token}, args...)
	code := cli.Execute(full, &out, &errOut)
	return out.String(), errOut.String(), code
}

func (e *env) mustCtl(token string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.restorectl(token, args...)
	if code != 0 {
		e.t.Fatalf("restorectl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// The operator's story with restorectl: tenants, tokens, hosts, recovery
// points and restores, in tables and JSON.
func TestRestorectlOperatorStory(t *testing.T) {
	e := startServer(t)
	if out := e.mustCtl(e.admin, "tenant", "create", "acme", "--display-name", "Acme Corp"); !strings.Contains(out, "Acme Corp") {
		t.Fatalf("tenant create: %s", out)
	}
	if out := e.mustCtl(e.admin, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Fatalf("tenant list: %s", out)
	}
	var tok restorev1.CreateTokenResponse
	out := e.mustCtl(e.admin, "token", "create", "--tenant", "acme", "--role", "partner", "--output", "json")
	if err := protojson.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Secret, "rst.") {
		t.Fatalf("token create json: %s (%v)", out, err)
	}
	if out := e.mustCtl(e.admin, "token", "list", "--tenant", "acme"); !strings.Contains(out, tok.Id) || strings.Contains(out, tok.Secret) {
		t.Fatalf("token list must show the id and never the secret: %s", out)
	}
	agent := e.agent("kvm-01", rp("rp-1", "acme", "web"))
	if out := e.mustCtl(e.admin, "host", "list"); !strings.Contains(out, "kvm-01") || !strings.Contains(out, "READY") {
		t.Fatalf("host list: %s", out)
	}
	if out := e.mustCtl(tok.Secret, "recovery-point", "list"); !strings.Contains(out, "rp-1") {
		t.Fatalf("rp list: %s", out)
	}
	if out := e.mustCtl(tok.Secret, "rp", "get", "rp-1", "-o", "json"); !strings.Contains(out, `"asset": "web"`) {
		t.Fatalf("rp get: %s", out)
	}

	out = e.mustCtl(tok.Secret, "restore", "create", "--recovery-point", "rp-1", "--mode", "virtualize", "--memory-mib", "512", "--ttl", "2h", "--request-id", "ctl-1", "-o", "json")
	var created restorev1.Restore
	if err := protojson.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("restore create json: %s (%v)", out, err)
	}
	if created.MemoryMib != 512 || created.TtlSeconds != 7200 {
		t.Fatalf("created %v", &created)
	}
	agent.waitFor("assigned", func(as []*restorev1.Assignment) bool { return len(as) == 1 })
	agent.report(created.Id, restorev1.RestoreState_RESTORE_STATE_RUNNING, &restorev1.Boot{Verified: true})
	if out := e.mustCtl(tok.Secret, "restore", "list", "--state", "running"); !strings.Contains(out, created.Id) || !strings.Contains(out, "RUNNING") {
		t.Fatalf("restore list: %s", out)
	}
	if out := e.mustCtl(tok.Secret, "restore", "get", created.Id); !strings.Contains(out, "kvm-01") {
		t.Fatalf("restore get: %s", out)
	}
	watched := e.mustCtl(tok.Secret, "restore", "watch", "--for", "300ms")
	if !strings.Contains(watched, created.Id) || !strings.Contains(watched, "RUNNING") || !strings.Contains(watched, "ADDED") {
		t.Fatalf("restore watch: %s", watched)
	}
	rv := regexp.MustCompile(`rv=(\d+)`).FindStringSubmatch(watched)
	if rv == nil {
		t.Fatalf("restore watch printed no resource version: %s", watched)
	}
	if out := e.mustCtl(tok.Secret, "restore", "delete", created.Id); !strings.Contains(out, "STOPPING") {
		t.Fatalf("restore delete: %s", out)
	}
	// Resumed after the listing: only the change since (the delete).
	if out := e.mustCtl(tok.Secret, "restore", "watch", "--resource-version", rv[1], "--for", "300ms"); !strings.Contains(out, "MODIFIED") ||
		!strings.Contains(out, "STOPPING") || strings.Contains(out, "ADDED") {
		t.Fatalf("restore watch --resource-version %s: %s", rv[1], out)
	}
	backup, _ := e.token(created.Tenant, "backup")
	for _, w := range []struct {
		token string
		args  []string
		want  []string
	}{
		{e.admin, []string{"host", "list", "--watch"}, []string{"TIME  EVENT  RV  ID", "ADDED", "kvm-01"}},
		{tok.Secret, []string{"audit", "--watch", "--method", "DeleteRestore"}, []string{"ADDED", "DeleteRestore", "ACCEPTED"}},
		{tok.Secret, []string{"verify", "list", "--watch"}, []string{"TIME  EVENT  RV"}},
		{backup, []string{"snapshot", "list", "--watch", "-o", "json"}, nil},
	} {
		out := e.mustCtl(w.token, append(w.args, "--for", "300ms")...)
		for _, want := range w.want {
			if !strings.Contains(out, want) {
				t.Fatalf("restorectl %v: %q missing from:\n%s", w.args, want, out)
			}
		}
	}
	if out := e.mustCtl(e.admin, "host", "drain", "kvm-01"); !strings.Contains(out, "true") {
		t.Fatalf("host drain: %s", out)
	}
	if out := e.mustCtl(e.admin, "host", "undrain", "kvm-01"); !strings.Contains(out, "false") {
		t.Fatalf("host undrain: %s", out)
	}
	if out := e.mustCtl(e.admin, "cluster", "status"); !strings.Contains(out, "leader: s1") || !strings.Contains(out, "CA: sha256:") {
		t.Fatalf("cluster status: %s", out)
	}
	if out := e.mustCtl(e.admin, "token", "revoke", tok.Id); !strings.Contains(out, tok.Id) {
		t.Fatalf("token revoke: %s", out)
	}

	// Errors: a clear message and exit code 1.
	for _, bad := range []struct {
		token string
		args  []string
		want  string
	}{
		{tok.Secret, []string{"restore", "list"}, "Unauthenticated"},
		{e.admin, []string{"restore", "create", "--recovery-point", "rp-1", "--mode", "teleport"}, "allowed values are virtualize, verify"},
		{e.admin, []string{"restore", "create", "--recovery-point", "rp-1", "--vcpus", "99"}, "vcpus must be between 1 and 64"},
		{e.admin, []string{"restore", "get", "nope"}, "NotFound"},
		{e.admin, []string{"tenant", "create", "Not A Label"}, "lowercase DNS label"},
		{e.admin, []string{"host", "list", "-o", "yaml"}, "--output must be table or json"},
		{"", []string{"host", "list"}, "no token"},
	} {
		out, errOut, code := e.restorectl(bad.token, bad.args...)
		if code != 1 || !strings.Contains(errOut, bad.want) {
			t.Errorf("restorectl %v: exit %d, stderr %q, stdout %q; want exit 1 saying %q", bad.args, code, errOut, out, bad.want)
		}
	}
}
