package e2e

import (
	"bytes"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/cli"
)

// VERIFY runs on real QEMU give one verdict from all the evidence: the
// screen, the guest agent and its facts, the serial console, application
// checks run inside the guest; screenshots are kept on the host.
func TestVerificationGivesOneVerdictFromAllTheEvidence(t *testing.T) {
	s := startKVMStack(t)

	verification := func(t *testing.T, id string) map[string]any {
		t.Helper()
		code, v := s.rest("GET", "/v1/verifications/"+id, s.acme, nil)
		if code != 200 {
			t.Fatalf("GET verification %s: HTTP %d %v", id, code, v)
		}
		return v
	}
	check := func(t *testing.T, v map[string]any, name string) map[string]any {
		t.Helper()
		for _, c := range v["checks"].([]any) {
			if c := c.(map[string]any); c["name"] == name {
				return c
			}
		}
		t.Fatalf("no check %q in %v", name, v["checks"])
		return nil
	}
	screenshotOnHost := func(t *testing.T, id string, n int) (int, int) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.work, "evidence", id, fmt.Sprintf("%d.png", n)))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot %d: %v", n, err)
		}
		return img.Bounds().Dx(), img.Bounds().Dy()
	}

	t.Run("a bootable image PASSES with all its evidence", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "memory_mib": 128, "request_id": "pass-1",
			"verify": map[string]any{
				"serial_marker": "RESTORED-TEST-IMAGE-BOOTED",
				"filesystems":   []string{"/"},
				"app_checks": []map[string]any{{"name": "hello", "path": "/bin/sh", "args": []string{"-c", "echo hello from $(hostname)"},
					"output_regex": "hello from restored-test"}},
			}})
		got := s.waitState(id, "RESTORE_STATE_DESTROYED", 4*time.Minute, verified)
		if got["verdict"] != "VERDICT_PASSED" {
			t.Fatalf("restore verdict %v (%v)", got["verdict"], got["state_reason"])
		}
		v := verification(t, id)
		t.Logf("verdict %v in %v ms: %v", v["verdict"], v["time_to_boot_ms"], v["reason"])
		for _, c := range v["checks"].([]any) {
			c := c.(map[string]any)
			t.Logf("  %-12v %-22v %v", c["name"], c["result"], c["detail"])
		}
		if v["verdict"] != "VERDICT_PASSED" || v["asset"] != "web-01" || v["tenant"] != "acme" {
			t.Fatalf("verification %v", v)
		}
		for _, name := range []string{"screen", "guest-agent", "filesystems", "serial", "app:hello"} {
			if c := check(t, v, name); c["result"] != "CHECK_RESULT_PASSED" {
				t.Fatalf("check %s: %v", name, c)
			}
		}
		guest := v["guest"].(map[string]any)
		if guest["hostname"] != "restored-test" || guest["os_name"] != "Restored test image" {
			t.Fatalf("guest facts %v", guest)
		}
		if !strings.Contains(fmt.Sprint(v["serial_tail"]), "restored-test login:") {
			t.Fatalf("serial tail %q", v["serial_tail"])
		}
		var labels []string
		for _, sh := range v["screenshots"].([]any) {
			sh := sh.(map[string]any)
			labels = append(labels, fmt.Sprint(sh["label"]))
			n := int(sh["n"].(float64))
			if w, h := screenshotOnHost(t, id, n); float64(w) != sh["width"] || float64(h) != sh["height"] {
				t.Fatalf("screenshot %d on the host is %dx%d, the API says %vx%v", n, w, h, sh["width"], sh["height"])
			}
		}
		if strings.Join(labels, ",") != "first-light,boot-signal,end" {
			t.Fatalf("screenshots %v", labels)
		}
		// The API serves the kept screenshots from the host, byte for byte.
		for n := 1; n <= 3; n++ {
			code, ctype, body := s.image(fmt.Sprintf("/v1/verifications/%s/screenshots/%d", id, n), s.acme)
			onHost, _ := os.ReadFile(filepath.Join(s.work, "evidence", id, fmt.Sprintf("%d.png", n)))
			if code != 200 || ctype != "image/png" || !bytes.Equal(body, onHost) {
				t.Fatalf("screenshot %d over the API: HTTP %d %s, %d bytes (host has %d)", n, code, ctype, len(body), len(onHost))
			}
		}
		for _, c := range []struct {
			path, tok string
			want      int
		}{
			{fmt.Sprintf("/v1/verifications/%s/screenshots/1", id), s.globex, 404},
			{fmt.Sprintf("/v1/verifications/%s/screenshots/9", id), s.acme, 404},
			{fmt.Sprintf("/v1/verifications/%s/screenshots/x", id), s.acme, 400},
			{fmt.Sprintf("/v1/verifications/%s/screenshots/1", id), "rst.nope.nope", 401},
		} {
			if code, _, body := s.image(c.path, c.tok); code != c.want {
				t.Fatalf("%s: HTTP %d %s, want %d", c.path, code, body, c.want)
			}
		}
		if w, h := screenshotOnHost(t, id, 3); w != 640 || h != 480 {
			t.Fatalf("the end screenshot is %dx%d, want the guest's 640x480", w, h)
		}
		keepForDocs(t, filepath.Join(s.work, "evidence", id, "3.png"), "verify-passed-end.png")
		s.assertGone(id)

		// Tenant-scoped like everything else.
		if code, _ := s.rest("GET", "/v1/verifications/"+id, s.globex, nil); code != 404 {
			t.Fatalf("globex sees acme's verification: HTTP %d", code)
		}
		code, list := s.rest("GET", "/v1/verifications?asset=web-01", s.acme, nil)
		if code != 200 || len(list["verifications"].([]any)) == 0 {
			t.Fatalf("list: HTTP %d %v", code, list)
		}
		if code, list := s.rest("GET", "/v1/verifications", s.globex, nil); code != 200 || list["verifications"] != nil && len(list["verifications"].([]any)) != 0 {
			t.Fatalf("globex lists acme's verifications: %v", list)
		}
	})

	t.Run("an application check that fails makes the verdict FAILED, naming it", func(t *testing.T) {
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VERIFY", "memory_mib": 128, "request_id": "appfail-1",
			"verify": map[string]any{"app_checks": []map[string]any{
				{"name": "db-up", "path": "/bin/sh", "args": []string{"-c", "echo database is down >&2; exit 3"}},
			}}})
		got := s.waitState(id, "RESTORE_STATE_FAILED", 4*time.Minute, verified)
		v := verification(t, id)
		t.Logf("reason: %v", v["reason"])
		if got["verdict"] != "VERDICT_FAILED" || v["failed_check"] != "app:db-up" ||
			!strings.Contains(fmt.Sprint(v["reason"]), "exited 3, expected 0") || !strings.Contains(fmt.Sprint(v["reason"]), "database is down") {
			t.Fatalf("verification %v", v)
		}
		s.assertGone(id)
	})

	t.Run("an image that cannot boot is FAILED at once with the firmware's error on screen", func(t *testing.T) {
		s.blankRecoveryPoint("rp-noboot")
		start := time.Now()
		id := s.create(map[string]any{"recovery_point_id": "rp-noboot", "mode": "VERIFY", "memory_mib": 128, "request_id": "noboot-1"})
		got := s.waitState(id, "RESTORE_STATE_FAILED", 4*time.Minute, nil)
		v := verification(t, id)
		t.Logf("FAILED after %s: %v", time.Since(start).Round(time.Second), v["reason"])
		if got["verdict"] != "VERDICT_FAILED" || v["failed_check"] != "screen" || !strings.Contains(fmt.Sprint(v["reason"]), "No bootable device") {
			t.Fatalf("verification %v", v)
		}
		shots := v["screenshots"].([]any)
		last := shots[len(shots)-1].(map[string]any)
		if w, h := screenshotOnHost(t, id, int(last["n"].(float64))); w != 720 || h != 400 {
			t.Fatalf("the last screenshot is %dx%d, want the firmware's 720x400 text screen", w, h)
		}
		keepForDocs(t, filepath.Join(s.work, "evidence", id, fmt.Sprintf("%d.png", int(last["n"].(float64)))), "verify-failed-no-bootable-device.png")
		s.assertGone(id)
	})

	t.Run("a policy verifies an asset's newest recovery point on schedule, once, and the trend follows", func(t *testing.T) {
		now := time.Now()
		s.imageRecoveryPoint("db-01", "rp-db-old", now.Add(-2*time.Hour))
		s.imageRecoveryPoint("db-01", "rp-db-new", now.Add(-time.Hour))
		code, pol := s.rest("PUT", "/v1/verification-policies/db-01", s.acme, map[string]any{
			"interval_seconds": 60, "max_per_host": 1,
			"verify": map[string]any{"app_checks": []map[string]any{{"name": "up", "path": "/bin/true"}}},
		})
		if code != 200 || pol["id"] != "acme/db-01" {
			t.Fatalf("set policy: HTTP %d %v", code, pol)
		}
		var runs []any
		eventually(t, 30*time.Second, "the policy starts a run", func() bool {
			_, list := s.rest("GET", "/v1/restores", s.acme, nil)
			runs = nil
			for _, r := range list["restores"].([]any) {
				if r.(map[string]any)["policy_id"] == "acme/db-01" {
					runs = append(runs, r)
				}
			}
			return len(runs) > 0
		})
		run := runs[0].(map[string]any)
		if run["recovery_point_id"] != "rp-db-new" || run["mode"] != "MODE_VERIFY" {
			t.Fatalf("the policy verified %v (%v), want the newest recovery point", run["recovery_point_id"], run["mode"])
		}
		id := run["id"].(string)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 4*time.Minute, verified)
		v := verification(t, id)
		if v["verdict"] != "VERDICT_PASSED" || v["policy_id"] != "acme/db-01" {
			t.Fatalf("policy verification %v", v)
		}
		// Verified once: nothing more starts for it, however often the
		// scheduler looks.
		time.Sleep(3 * time.Second)
		_, list := s.rest("GET", "/v1/restores", s.acme, nil)
		n := 0
		for _, r := range list["restores"].([]any) {
			if r.(map[string]any)["policy_id"] == "acme/db-01" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d policy runs, want 1", n)
		}
		// A second verification of it needs force.
		code, body := s.rest("POST", "/v1/verifications:run", s.acme, map[string]any{"asset": "db-01", "request_id": "again-1"})
		if code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "verified already") {
			t.Fatalf("run again without force: HTTP %d %v", code, body)
		}
		code, tr := s.rest("GET", "/v1/verification-trends/db-01", s.acme, nil)
		t.Logf("trend: %v", tr)
		if code != 200 || tr["last_verdict"] != "VERDICT_PASSED" || tr["pass_rate"] != 1.0 || tr["time_to_boot_p50_ms"] == "0" {
			t.Fatalf("trend: HTTP %d %v", code, tr)
		}
		if code, _ := s.rest("GET", "/v1/verification-trends/db-01", s.globex, nil); code != 404 && code != 400 {
			t.Fatalf("globex reads acme's trend: HTTP %d", code)
		}
		req, _ := http.NewRequest("GET", "https://"+s.srv.HTTP+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+s.admin)
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), `restored_verification_last_passed{asset="db-01",tenant="acme"} 1`) {
			t.Fatalf("no trend metric for db-01 in /metrics")
		}
		// The same through restorectl.
		ctl := func(args ...string) string {
			var out, errOut bytes.Buffer
			if code := cli.Execute(append([]string{"--addr", s.srv.GRPC, "--ca-cert", s.ca, "--token", s.acme}, args...), &out, &errOut); code != 0 {
				t.Fatalf("restorectl %v: exit %d %s", args, code, errOut.String())
			}
			return out.String()
		}
		for args, want := range map[string][]string{
			"verify show --asset db-01": {"PASSED", "100%"},
			"verify policy list":        {"acme/db-01", "1m0s", "app:up"},
			"verify show " + id:         {"verdict", "app:up", "PASSED", "first-light"},
			"verify list --asset db-01": {id, "rp-db-new", "PASSED"},
		} {
			out := ctl(strings.Fields(args)...)
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Fatalf("restorectl %s lacks %q:\n%s", args, w, out)
				}
			}
		}
		if code, _ := s.rest("DELETE", "/v1/verification-policies/db-01", s.acme, nil); code != 200 {
			t.Fatalf("delete policy: HTTP %d", code)
		}
	})

	t.Run("verify options are refused for VIRTUALIZE and when malformed, with nothing created", func(t *testing.T) {
		count := func() int {
			code, list := s.rest("GET", "/v1/restores", s.acme, nil)
			if code != 200 {
				t.Fatalf("list restores: HTTP %d", code)
			}
			rs, _ := list["restores"].([]any)
			return len(rs)
		}
		before := count()
		for _, body := range []map[string]any{
			{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "request_id": "bad-1", "verify": map[string]any{"serial_marker": "x"}},
			{"recovery_point_id": "rp-1", "mode": "VERIFY", "request_id": "bad-2", "verify": map[string]any{"serial_marker": "(unclosed"}},
			{"recovery_point_id": "rp-1", "mode": "VERIFY", "request_id": "bad-3", "verify": map[string]any{"app_checks": []map[string]any{{"name": "x", "path": "relative/path"}}}},
			{"recovery_point_id": "rp-1", "mode": "VERIFY", "request_id": "bad-4", "verify": map[string]any{"app_checks": []map[string]any{{"name": "Bad Name", "path": "/bin/true"}}}},
		} {
			code, resp := s.rest("POST", "/v1/restores", s.acme, body)
			if code != 400 {
				t.Fatalf("%v: HTTP %d %v", body, code, resp)
			}
			t.Logf("refused: %v", resp["message"])
		}
		if after := count(); after != before {
			t.Fatalf("%d restores before, %d after refused requests", before, after)
		}
	})
}

// keepForDocs copies a screenshot into $RESTORED_DOCS_IMAGES when set (how
// docs/images/verify-*.png were made: RESTORED_DOCS_IMAGES=$PWD/docs/images).
func keepForDocs(t *testing.T, src, name string) {
	dir := os.Getenv("RESTORED_DOCS_IMAGES")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
