package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/cli"
)

// exportImage asks for an IMAGE restore of rp-1 over REST and waits until
// its files are made.
func (s *kvmStack) exportImage(format, requestID string, ttl int) map[string]any {
	s.t.Helper()
	body := map[string]any{"format": format, "request_id": requestID}
	if ttl > 0 {
		body["ttl_seconds"] = ttl
	}
	code, r := s.rest("POST", "/v1/recovery-points/rp-1:export-image", s.acme, body)
	if code != 200 || r["mode"] != "MODE_IMAGE" {
		s.t.Fatalf("export-image %s: HTTP %d %v", format, code, r)
	}
	return s.waitState(r["id"].(string), "RESTORE_STATE_RUNNING", 2*time.Minute, func(x map[string]any) bool { return x["image"] != nil })
}

// link asks for a download link of an IMAGE restore's only file.
func (s *kvmStack) link(id, tok string) (int, map[string]any) {
	s.t.Helper()
	return s.rest("POST", "/v1/restores/"+id+":download", tok, map[string]any{})
}

// get GETs a download URL (no bearer token: the URL is the secret) with
// an optional Range.
func (s *kvmStack) get(url, rng string) (int, http.Header, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// int64Of reads an int64 of a JSON answer (protojson writes them as strings).
func int64Of(v any) int64 {
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return n
}

// sameDisk converts an image back to raw with qemu-img and compares it
// with the recovery point's disk.
func sameDisk(t *testing.T, image, format, disk string) {
	t.Helper()
	back := image + ".back.raw"
	if out, err := exec.Command("qemu-img", "convert", "-f", format, "-O", "raw", image, back).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s back: %v\n%s", format, err, out)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", disk, back).CombinedOutput(); err != nil {
		t.Fatalf("the %s image converted back differs from the recovery point: %v\n%s", format, err, out)
	}
	if out, err := exec.Command("qemu-img", "info", "-f", format, image).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", format, err, out)
	} else if format == "vmdk" && !strings.Contains(string(out), "streamOptimized") {
		t.Fatalf("the VMDK is not streamOptimized:\n%s", out)
	}
}

// An IMAGE restore converts the recovery point into qcow2, VMDK
// (streamOptimized) and VHDX files on its host; a single-use link
// streams a file through the server, resumable with Range; every format
// converts back to exactly the recovery point's disk; a replayed, foreign,
// deleted or expired link is refused; DELETE leaves nothing; the recovery
// point is never written.
func TestImageDownloadsAreTheRecoveryPointInEachFormatThroughSingleUseLinks(t *testing.T) {
	s := startKVMStack(t)
	before := fileFacts(t, s.disk)
	dir := t.TempDir()

	// Bad input changes nothing.
	for _, bad := range []map[string]any{{"request_id": "no-format"}, {"request_id": "bad-format", "format": "OVA"}} {
		if code, body := s.rest("POST", "/v1/recovery-points/rp-1:export-image", s.acme, bad); code != 400 {
			t.Fatalf("export-image %v: HTTP %d %v, want 400", bad, code, body)
		}
	}
	if code, body := s.rest("POST", "/v1/restores", s.acme, map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "request_id": "v-img",
		"image": map[string]any{"format": "QCOW2"}}); code != 400 || !strings.Contains(fmt.Sprint(body), "image options are for IMAGE restores") {
		t.Fatalf("image options on a VIRTUALIZE restore: HTTP %d %v", code, body)
	}
	if code, body := s.rest("POST", "/v1/recovery-points/rp-1:export-image", s.globex, map[string]any{"format": "QCOW2", "request_id": "g"}); code != 404 {
		t.Fatalf("globex exported acme's recovery point: HTTP %d %v", code, body)
	}
	if _, list := s.rest("GET", "/v1/restores", s.acme, nil); len(list["restores"].([]any)) != 0 {
		t.Fatalf("refused requests left restores: %v", list)
	}

	// qcow2 over REST, in two ranges; the link is spent by the last byte.
	q := s.exportImage("QCOW2", "img-qcow2", 0)
	qid := q["id"].(string)
	file := q["image"].(map[string]any)["files"].([]any)[0].(map[string]any)
	t.Logf("RUNNING: %s; %v", q["state_reason"], file)
	if code, _ := s.link(qid, s.globex); code != 404 {
		t.Fatalf("globex got a link to acme's image: HTTP %d", code)
	}
	code, l := s.link(qid, s.acme)
	if code != 200 || !strings.Contains(l["url"].(string), "/download/") || l["file_name"] != "disk0.qcow2" {
		t.Fatalf("download link: HTTP %d %v", code, l)
	}
	url := l["url"].(string)
	size := int64Of(file["size_bytes"])
	code, h, first := s.get(url, "bytes=0-1048575")
	if code != 206 || len(first) != 1<<20 || h.Get("Content-Range") != fmt.Sprintf("bytes 0-1048575/%d", size) {
		t.Fatalf("first range: HTTP %d, %d bytes, %q", code, len(first), h.Get("Content-Range"))
	}
	if code, _, _ := s.get(url, "bytes=0-1,4-5"); code != 416 {
		t.Fatalf("two ranges: HTTP %d, want 416", code)
	}
	code, _, rest := s.get(url, "bytes=1048576-")
	if code != 206 || int64(len(first)+len(rest)) != size {
		t.Fatalf("the rest: HTTP %d, %d bytes of %d", code, len(rest), size)
	}
	qcow := filepath.Join(dir, "disk0.qcow2")
	whole := append(first, rest...)
	if err := os.WriteFile(qcow, whole, 0o600); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(whole); hex.EncodeToString(sum[:]) != file["sha256"] || l["sha256"] != file["sha256"] {
		t.Fatalf("the download's SHA-256 %x is not the file's %v (link %v)", sum, file["sha256"], l["sha256"])
	}
	sameDisk(t, qcow, "qcow2", s.disk)
	if code, _, body := s.get(url, ""); code != 410 {
		t.Fatalf("a replayed link: HTTP %d %s, want 410", code, body)
	}
	if code, _, _ := s.get("https://"+s.srv.HTTP+"/download/not-a-token", ""); code != 410 {
		t.Fatalf("a made-up link: HTTP %d, want 410", code)
	}

	// VMDK through restorectl: the export with a progress bar, the download
	// resumed from a partial file.
	ctl := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := cli.Execute(append([]string{"--addr", s.srv.GRPC, "--ca-cert", s.ca, "--token", s.acme}, args...), &out, &errOut); code != 0 {
			t.Fatalf("restorectl %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, _ := ctl("image", "export", "--recovery-point", "rp-1", "--format", "vmdk", "--wait", "--request-id", "img-vmdk", "--output", "json")
	var vid string
	if _, err := fmt.Sscanf(out[strings.Index(out, `"id":`):], `"id": %q`, &vid); err != nil || !strings.Contains(out, "RESTORE_STATE_RUNNING") || !strings.Contains(out, "disk0.vmdk") {
		t.Fatalf("restorectl image export --wait: %v\n%s", err, out)
	}
	vmdk := filepath.Join(dir, "web-01.vmdk")
	_, full := s.rest("GET", "/v1/restores/"+vid, s.acme, nil)
	vsize := int64Of(full["image"].(map[string]any)["files"].([]any)[0].(map[string]any)["size_bytes"])
	// A partial file from an earlier, cut download: its first half.
	_, l = s.link(vid, s.acme)
	_, _, half := s.get(l["url"].(string), fmt.Sprintf("bytes=0-%d", vsize/2-1))
	if err := os.WriteFile(vmdk, half, 0o600); err != nil {
		t.Fatal(err)
	}
	out, progress := ctl("image", "download", vid, "--file", vmdk)
	if !strings.Contains(out, fmt.Sprintf("saved %s (%d bytes, SHA-256 ", vmdk, vsize)) || !strings.Contains(out, "verified") || !strings.Contains(progress, "100%") {
		t.Fatalf("restorectl image download: %s\n%s", out, progress)
	}
	t.Logf("restorectl image download: %s%s", strings.TrimSpace(progress[strings.LastIndex(progress, "\r")+1:]), "")
	sameDisk(t, vmdk, "vmdk", s.disk)

	// VHDX in one GET.
	x := s.exportImage("VHDX", "img-vhdx", 0)
	_, l = s.link(x["id"].(string), s.acme)
	code, h, body := s.get(l["url"].(string), "")
	if code != 200 || !strings.Contains(h.Get("Content-Disposition"), "disk0.vhdx") || h.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("VHDX download: HTTP %d %v", code, h)
	}
	vhdx := filepath.Join(dir, "disk0.vhdx")
	if err := os.WriteFile(vhdx, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sameDisk(t, vhdx, "vhdx", s.disk)

	// A link of a deleted restore is refused, and DELETE leaves nothing.
	_, l = s.link(x["id"].(string), s.acme)
	for _, id := range []string{qid, vid, x["id"].(string)} {
		if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
			t.Fatalf("delete %s: HTTP %d %v", id, code, body)
		}
	}
	if code, _, _ := s.get(l["url"].(string), ""); code != 410 {
		t.Fatalf("the link of a deleted IMAGE restore: HTTP %d, want 410", code)
	}
	for _, id := range []string{qid, vid, x["id"].(string)} {
		s.waitState(id, "RESTORE_STATE_DESTROYED", time.Minute, func(r map[string]any) bool { return r["image"] == nil })
		if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
			t.Fatalf("the image's work dir is left: %v", err)
		}
	}

	// An expired link is refused: it lives no longer than its restore.
	e := s.exportImage("QCOW2", "img-short", 15)
	_, l = s.link(e["id"].(string), s.acme)
	s.waitState(e["id"].(string), "RESTORE_STATE_EXPIRED", time.Minute, nil)
	if code, _, body := s.get(l["url"].(string), "bytes=0-0"); code != 410 {
		t.Fatalf("an expired link: HTTP %d %s, want 410", code, body)
	}
	eventually(t, time.Minute, "the expired image's files removed", func() bool {
		_, err := os.Stat(filepath.Join(s.work, "restores", e["id"].(string)))
		return os.IsNotExist(err)
	})
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed:\n%s\n%s", before, after)
	}
}
