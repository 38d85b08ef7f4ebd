package e2e

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		if w, h := screenshotOnHost(t, id, 3); w != 640 || h != 480 {
			t.Fatalf("the end screenshot is %dx%d, want the guest's 640x480", w, h)
		}
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
		s.assertGone(id)
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
