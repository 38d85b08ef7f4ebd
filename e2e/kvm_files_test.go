package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/restored/restored/internal/cli"
	"github.com/restored/restored/internal/testfsimage"
)

// filesRecoveryPoint writes a recovery point of the given disks (name →
// file, format, backing recovery point) under acme/fileserver.
func (s *kvmStack) filesRecoveryPoint(id string, disks [][4]string) {
	s.t.Helper()
	dir := s.rpDirOf("fileserver", id)
	var ds []string
	for _, d := range disks {
		name, src, format, backing := d[0], d[1], d[2], d[3]
		dst := filepath.Join(dir, name+"."+format)
		if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
			s.t.Fatalf("cp: %v %s", err, out)
		}
		_ = os.Chmod(dst, 0o644)
		st, _ := os.Stat(src)
		size := st.Size()
		if format == "qcow2" {
			size = qcow2Size(s.t, dst)
		}
		ds = append(ds, fmt.Sprintf(`{"name":%q,"file":%q,"format":%q,"virtual_size":%d,"backing":%q}`, name, filepath.Base(dst), format, size, backing))
	}
	m := fmt.Sprintf(`{"id":%q,"tenant":"acme","asset":"fileserver","created_at":"2026-11-30T22:00:00Z","firmware":"bios","os":"linux","disks":[%s]}`, id, strings.Join(ds, ","))
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func qcow2Size(t *testing.T, p string) int64 {
	out, err := exec.Command("qemu-img", "info", "--output=json", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(out, []byte(`"virtual-size":`))
	var n int64
	fmt.Sscanf(string(out[i+len(`"virtual-size":`):]), " %d", &n)
	return n
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// listFiles lists a directory over REST, every page.
func (s *kvmStack) listFiles(rp, p, tok string, pageSize int) (int, map[string]map[string]any, map[string]any) {
	s.t.Helper()
	out := map[string]map[string]any{}
	token := ""
	for {
		q := url.Values{"path": {p}, "page_size": {fmt.Sprint(pageSize)}, "page_token": {token}}
		code, r := s.rest("GET", "/v1/recovery-points/"+rp+"/files?"+q.Encode(), tok, nil)
		if code != 200 {
			return code, nil, r
		}
		es, _ := r["entries"].([]any)
		if len(es) > pageSize {
			s.t.Fatalf("a page of %d entries for page_size %d", len(es), pageSize)
		}
		for _, e := range es {
			e := e.(map[string]any)
			out[e["name"].(string)] = e
		}
		if token, _ = r["next_page_token"].(string); token == "" {
			return code, out, r
		}
	}
}

// fileLink asks for a download link of a path.
func (s *kvmStack) fileLink(rp, p string) map[string]any {
	s.t.Helper()
	code, l := s.rest("POST", "/v1/recovery-points/"+rp+"/files:download", s.acme, map[string]any{"path": p})
	if code != 200 {
		s.t.Fatalf("download link of %s: HTTP %d %v", p, code, l)
	}
	return l
}

// Files are listed and downloaded from a recovery point's partitions
// (GPT and MBR) and filesystems (FAT32, ext4, XFS, NTFS) without booting
// or mounting anything, read through its qcow2 chain; directories arrive
// as tar streams; symbolic links are reported and never followed; bad
// paths, other tenants and hostile filesystems get clear errors; the
// recovery point is never written and nothing is left running.
func TestFileLevelRestoreReadsEachFilesystemThroughTheChainWithoutBooting(t *testing.T) {
	s := startKVMStack(t)
	build := t.TempDir()
	_ = os.Chmod(build, 0o755)
	im := testfsimage.Build(t, build)
	hostile := testfsimage.Hostile(t, build)

	// The incremental: /etc/hostname changed on ext4, in the top qcow2 only.
	base := filepath.Join(build, "vda-base.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", im.GPT, base).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	s.filesRecoveryPoint("files-base", [][4]string{{"vda", base, "qcow2", ""}, {"vdb", im.MBR, "raw", ""}})
	changed := filepath.Join(build, "gpt-changed.raw")
	raw, _ := os.ReadFile(im.GPT)
	ext4Start := 83968 * 512
	i := bytes.Index(raw[ext4Start:], []byte("restored-test\n"))
	if i < 0 {
		t.Fatal("the ext4 hostname is not in the image")
	}
	copy(raw[ext4Start+i:], "restored-incr\n")
	if err := os.WriteFile(changed, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	baseDisk := filepath.Join(s.repo, "acme", "fileserver", "files-base", "vda.qcow2")
	top := filepath.Join(build, "vda-top.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", "-B", baseDisk, "-F", "qcow2", changed, top).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	s.filesRecoveryPoint("files-incr", [][4]string{{"vda", top, "qcow2", "files-base"}, {"vdb", im.MBR, "raw", ""}})
	s.filesRecoveryPoint("files-hostile", [][4]string{{"vda", hostile[testfsimage.DirLoop], "raw", ""},
		{"vdb", hostile[testfsimage.TraversalName], "raw", ""}, {"vdc", hostile[testfsimage.CorruptSuperblock], "raw", ""}})
	_ = s.agent.Process.Signal(syscall.SIGHUP)
	for _, id := range []string{"files-base", "files-incr", "files-hostile"} {
		eventually(t, 30*time.Second, id+" reported valid", func() bool {
			code, rp := s.rest("GET", "/v1/recovery-points/"+id, s.acme, nil)
			return code == 200 && rp["valid"] == true
		})
	}
	topFile := filepath.Join(s.repo, "acme", "fileserver", "files-incr", "vda.qcow2")
	before := fileFacts(t, topFile) + fileFacts(t, baseDisk)

	// The tree: disks, volumes with their filesystems.
	start := time.Now()
	_, disks, _ := s.listFiles("files-incr", "/", s.acme, 500)
	t.Logf("listing / took %s (the disks served, the reader started)", time.Since(start).Round(time.Millisecond))
	if len(disks) != 2 || disks["vda"]["type"] != "FILE_TYPE_DIRECTORY" || disks["vdb"]["path"] != "/vdb" {
		t.Fatalf("/: %v", disks)
	}
	want := map[string]string{"/vda/part1": "fat", "/vda/part2": "ext4", "/vdb/part1": "xfs", "/vdb/part2": "ntfs"}
	for _, d := range []string{"/vda", "/vdb"} {
		_, vols, _ := s.listFiles("files-incr", d, s.acme, 500)
		for name, v := range vols {
			if fs := want[d+"/"+name]; v["filesystem"] != fs {
				t.Fatalf("%s/%s: filesystem %v, want %q", d, name, v["filesystem"], fs)
			}
		}
	}

	// Names, sizes, modes and content on each filesystem.
	for vol, fs := range want {
		files := testfsimage.Tree
		if fs == "ntfs" {
			files = testfsimage.NTFSFiles
		}
		for _, f := range files {
			p := path.Join(vol, f.Path)
			_, dir, _ := s.listFiles("files-incr", path.Dir(p), s.acme, 500)
			e := dir[path.Base(p)]
			if e == nil || e["type"] != "FILE_TYPE_FILE" || int64Of(e["size_bytes"]) != int64(len(f.Data)) || e["path"] != p {
				t.Fatalf("%s: %v", p, e)
			}
			if (fs == "ext4" || fs == "xfs") && int64Of(e["mode"]) != int64(f.Mode) {
				t.Fatalf("%s: mode %v, want %o", p, e["mode"], f.Mode)
			}
			if f.Path != "data/big.bin" && f.Path != "big.bin" {
				continue
			}
			l := s.fileLink("files-incr", p)
			code, _, body := s.get(l["url"].(string), "")
			if code != 200 || sha(body) != f.SHA256() {
				t.Fatalf("%s: HTTP %d, %d bytes, sha256 %s, want %s", p, code, len(body), sha(body), f.SHA256())
			}
			if code, _, body := s.get(l["url"].(string), ""); code != 410 {
				t.Fatalf("%s: a replayed link: HTTP %d %s", p, code, body)
			}
		}
	}

	// Through the chain: the top layer's change, the base's original.
	for rp, text := range map[string]string{"files-incr": "restored-incr\n", "files-base": "restored-test\n"} {
		l := s.fileLink(rp, "/vda/part2/etc/hostname")
		if code, _, body := s.get(l["url"].(string), ""); code != 200 || string(body) != text {
			t.Fatalf("%s hostname: HTTP %d %q, want %q", rp, code, body, text)
		}
	}

	// A ranged download resumes; a page at a time lists everything.
	l := s.fileLink("files-incr", "/vdb/part1/data/big.bin")
	code, h, first := s.get(l["url"].(string), "bytes=0-99999")
	if code != 206 || len(first) != 100000 || !strings.HasPrefix(h.Get("Content-Range"), "bytes 0-99999/") {
		t.Fatalf("first range: HTTP %d, %d bytes, %q", code, len(first), h.Get("Content-Range"))
	}
	_, _, rest := s.get(l["url"].(string), "bytes=100000-")
	if sha(append(first, rest...)) != testfsimage.Tree[3].SHA256() {
		t.Fatal("the resumed download is not big.bin")
	}
	_, paged, _ := s.listFiles("files-incr", "/vda/part2", s.acme, 2)
	_, whole, r := s.listFiles("files-incr", "/vda/part2", s.acme, 500)
	if len(paged) != len(whole) || int64Of(r["total_size"]) != int64(len(whole)) || len(whole) < 6 {
		t.Fatalf("paged listing %d entries, whole %d (total %v)", len(paged), len(whole), r["total_size"])
	}

	// A symbolic link is reported, never followed; a directory is a tar.
	link := whole[testfsimage.Link]
	if link["type"] != "FILE_TYPE_SYMLINK" || link["link_target"] != testfsimage.LinkTarget {
		t.Fatalf("the link: %v", link)
	}
	if code, body := s.rest("POST", "/v1/recovery-points/files-incr/files:download", s.acme, map[string]any{"path": "/vda/part2/" + testfsimage.Link}); code != 400 || !strings.Contains(fmt.Sprint(body), "never follows") {
		t.Fatalf("downloading the link: HTTP %d %v", code, body)
	}
	l = s.fileLink("files-incr", "/vda/part2")
	if l["archive"] != true || l["file_name"] != "part2.tar" {
		t.Fatalf("directory link: %v", l)
	}
	code, h, body := s.get(l["url"].(string), "")
	if code != 200 || h.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("tar: HTTP %d %v", code, h)
	}
	got := map[string]*tar.Header{}
	sums := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(body))
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the tar stream: %v", err)
		}
		b, _ := io.ReadAll(tr)
		got[hd.Name], sums[hd.Name] = hd, sha(b)
	}
	for _, f := range testfsimage.Tree {
		n := "part2/" + f.Path
		want := f.SHA256()
		if f.Path == "etc/hostname" {
			want = sha([]byte("restored-incr\n"))
		}
		if got[n] == nil || sums[n] != want || os.FileMode(got[n].Mode).Perm() != f.Mode {
			t.Fatalf("%s in the tar: %v sha256 %s, want %s mode %o", n, got[n], sums[n], want, f.Mode)
		}
	}
	if hd := got["part2/"+testfsimage.Link]; hd == nil || hd.Typeflag != tar.TypeSymlink || hd.Linkname != testfsimage.LinkTarget {
		t.Fatalf("the link in the tar: %v", hd)
	}

	// Bad input and other tenants: typed errors, no host asked for globex.
	for _, c := range []struct {
		rp, p, tok string
		code       int
		says       string
	}{
		{"files-incr", "/vda/part2/../../etc/shadow", s.acme, 400, "not a path"},
		{"files-incr", "/vda/part2/nope", s.acme, 404, "no such file"},
		{"files-incr", "/vdz", s.acme, 404, "the disks are"},
		{"files-incr", "/vda/part2/etc", s.globex, 404, "not found"},
		{"no-such-rp", "/", s.acme, 404, "not found"},
		{"files-hostile", "/vdc/disk", s.acme, 400, "damaged"},
	} {
		q := url.Values{"path": {c.p}}
		code, body := s.rest("GET", "/v1/recovery-points/"+c.rp+"/files?"+q.Encode(), c.tok, nil)
		if code != c.code || !strings.Contains(fmt.Sprint(body), c.says) {
			t.Fatalf("list %s %s: HTTP %d %v, want %d saying %q", c.rp, c.p, code, body, c.code, c.says)
		}
	}
	if code, body := s.rest("GET", "/v1/recovery-points/files-incr/files?page_size=9999", s.acme, nil); code != 400 {
		t.Fatalf("page_size 9999: HTTP %d %v", code, body)
	}

	// Hostile filesystems: a loop fails before the first byte; a name with
	// "/" is listed quoted, without a path.
	l = s.fileLink("files-hostile", "/vda/disk/deep")
	if code, _, body := s.get(l["url"].(string), ""); code != 429 || !strings.Contains(string(body), "nest deeper") {
		t.Fatalf("the loop's tar: HTTP %d %s", code, body)
	}
	_, names, _ := s.listFiles("files-hostile", "/vdb/disk", s.acme, 500)
	bad := names[fmt.Sprintf("%q", testfsimage.TraversalEntry)]
	if bad == nil || bad["unsafe_reason"] != `name contains "/"` || bad["path"] != "" {
		t.Fatalf("the traversal name: %v (all %v)", bad, names)
	}

	// restorectl: ls, get a file, get a directory.
	ctl := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := cli.Execute(append([]string{"--addr", s.srv.GRPC, "--ca-cert", s.ca, "--token", s.acme}, args...), &out, &errOut); code != 0 {
			t.Fatalf("restorectl %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
		return out.String()
	}
	if out := ctl("files", "ls", "files-incr", "/vda/part2"); !strings.Contains(out, "lrwxrwxrwx") || !strings.Contains(out, "shadow-link -> /etc/shadow") {
		t.Fatalf("restorectl files ls:\n%s", out)
	} else {
		t.Logf("restorectl files ls files-incr /vda/part2:\n%s", out)
	}
	if out := ctl("files", "ls", "files-incr", "/vda/part2/etc"); !strings.Contains(out, "-rw-r--r--") || !strings.Contains(out, "hostname") || !strings.Contains(out, "-rw-------") {
		t.Fatalf("restorectl files ls:\n%s", out)
	}
	if out := ctl("files", "ls", "files-incr", "/vdb"); !strings.Contains(out, "part1/  (xfs)") || !strings.Contains(out, "part2/  (ntfs)") {
		t.Fatalf("restorectl files ls /vdb:\n%s", out)
	} else {
		t.Logf("restorectl files ls files-incr /vdb:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "big.bin")
	if out := ctl("files", "get", "files-incr", "/vdb/part2/big.bin", "--file", dst); !strings.Contains(out, testfsimage.NTFSFiles[1].SHA256()) {
		t.Fatalf("restorectl files get:\n%s", out)
	} else {
		t.Logf("restorectl files get: %s", out)
	}
	tarFile := filepath.Join(t.TempDir(), "etc.tar")
	if out := ctl("files", "get", "files-incr", "/vda/part1/etc", "--file", tarFile); !strings.Contains(out, "a tar archive of /vda/part1/etc") {
		t.Fatalf("restorectl files get (directory):\n%q", out)
	} else {
		t.Logf("restorectl files get (directory): %s", out)
	}
	if out, err := exec.Command("tar", "-tvf", tarFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "etc/hostname") {
		t.Fatalf("tar -t: %v\n%s", err, out)
	}

	s.browseFiles(t)

	// Nothing was written; the agent's disk servers end with it.
	if after := fileFacts(t, topFile) + fileFacts(t, baseDisk); after != before {
		t.Fatalf("the recovery point changed:\n%s\n%s", before, after)
	}
	s.killAgent()
	eventually(t, 10*time.Second, "no qemu-storage-daemon of the agent's left", func() bool {
		out, _ := exec.Command("pgrep", "-f", "qemu-storage-daemon.*"+s.work).Output()
		return len(bytes.TrimSpace(out)) == 0
	})
}

// browseFiles opens the file browser page in headless Chromium: it lists
// the volumes and a directory, shows a hostile name as text (no markup
// from a backup), and its download link gives the file.
func (s *kvmStack) browseFiles(t *testing.T) {
	if code, body := s.rest("POST", "/v1/recovery-points/files-incr/files:browse", s.globex, map[string]any{}); code != 404 {
		t.Fatalf("globex got a browser of acme's recovery point: HTTP %d %v", code, body)
	}
	code, b := s.rest("POST", "/v1/recovery-points/files-incr/files:browse", s.acme, map[string]any{})
	page, _ := b["url"].(string)
	if code != 200 || !strings.HasPrefix(page, "https://"+s.srv.HTTP+"/files/") {
		t.Fatalf("files:browse: HTTP %d %v", code, b)
	}
	if code, _, _ := s.get("https://"+s.srv.HTTP+"/files/not-a-token/list?path=/", ""); code != 410 {
		t.Fatalf("a made-up browser token: HTTP %d, want 410", code)
	}
	ctx := s.browser(t)
	rowsOf := `Array.from(document.querySelectorAll('#rows tr')).map(r => r.dataset.name + ':' + r.dataset.type).join(',')`
	if err := chromedp.Do(ctx, chromedp.Navigate(page+"#/vdb"), chromedp.WaitReady(`body[data-files="ready"]`)); err != nil {
		t.Fatalf("file browser page: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[string](rowsOf))
	if err != nil || !strings.Contains(rows, "part1:FILE_TYPE_DIRECTORY") || !strings.Contains(rows, "part2:FILE_TYPE_DIRECTORY") {
		t.Fatalf("/vdb in the browser: %q %v", rows, err)
	}
	// Click into part1 (XFS), then etc.
	for _, dir := range []string{"part1", "etc"} {
		if err := chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`#rows tr[data-name=%q] a`, dir))); err != nil {
			t.Fatalf("clicking %s: %v", dir, err)
		}
		in := fmt.Sprintf(`document.body.dataset.files === 'ready' && document.getElementById('crumbs').textContent.endsWith(%q)`, dir)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](in, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("after clicking %s: %v", dir, err)
		}
	}
	rows, _ = chromedp.Run(ctx, chromedp.Evaluate[string](rowsOf))
	if !strings.Contains(rows, "hostname:FILE_TYPE_FILE") || !strings.Contains(rows, "secret:FILE_TYPE_FILE") {
		t.Fatalf("/vdb/part1/etc in the browser: %q", rows)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector('#rows tr[data-name="hostname"] a.download').href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil || got != "restored-test\n" {
		t.Fatalf("the page's download link gave %q, %v", got, err)
	}
	// A hostile recovery point's name is text, not markup.
	_, hb := s.rest("POST", "/v1/recovery-points/files-hostile/files:browse", s.acme, map[string]any{})
	if err := chromedp.Do(ctx, chromedp.Navigate(hb["url"].(string)+"#/vdb/disk"), chromedp.WaitReady(`body[data-files="ready"]`)); err != nil {
		t.Fatalf("hostile browser page: %v", err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('td.unsafe') ? document.querySelector('td.unsafe').textContent : ''`))
	if !strings.Contains(text, testfsimage.TraversalEntry) || !strings.Contains(text, `name contains "/"`) {
		t.Fatalf("the unsafe name in the browser: %q", text)
	}
	t.Logf("file browser: /vdb/part1/etc rows %s", rows)
}
