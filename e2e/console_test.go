package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/restored/restored/internal/vmspec"
)

// The restore's console in a real browser (headless Chromium): a
// single-use URL opens noVNC, the guest's screen is on the canvas, typing
// reaches the guest, and the URL does not open twice.
func TestConsoleInTheBrowserShowsTheScreenAndTakesTheKeyboard(t *testing.T) {
	s := startKVMStack(t)
	id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128, "request_id": "console-1"})
	s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)

	if code, _ := s.rest("POST", "/v1/restores/"+id+"/console", s.globex, map[string]any{}); code != 404 {
		t.Fatalf("globex opened acme's console: HTTP %d", code)
	}
	code, resp := s.rest("POST", "/v1/restores/"+id+"/console", s.acme, map[string]any{})
	url, _ := resp["url"].(string)
	if code != 200 || !strings.HasPrefix(url, "https://"+s.srv.HTTP+"/console/") {
		t.Fatalf("console: HTTP %d %v", code, resp)
	}
	if log, _ := os.ReadFile(s.srv.LogPath); strings.Contains(string(log), strings.TrimPrefix(url, "https://"+s.srv.HTTP+"/console/")) {
		t.Fatal("the console token is in restored's log")
	}

	ctx := s.browser(t)

	// The screen: a canvas the size of the guest's 640x480 framebuffer, not blank.
	const litPixels = `(() => { const c = document.querySelector('#screen canvas');
		if (!c) return 0;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 0) n++;
		return n; })()`
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(`body[data-console="connected"]`)); err != nil {
		t.Fatalf("console page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](litPixels+" > 500", chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("the guest's screen never showed on the canvas: %v", err)
	}
	size, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const c = document.querySelector('#screen canvas'); return c.width + 'x' + c.height; })()`))
	if err != nil {
		t.Fatal(err)
	}
	lit, _ := chromedp.Run(ctx, chromedp.Evaluate[int](litPixels))
	t.Logf("console canvas %s with %d lit pixels", size, lit)
	if size != "640x480" {
		t.Fatalf("canvas %s, want the guest's 640x480", size)
	}

	// Typing reaches the guest's shell on tty1 and runs there: the command
	// makes a file, which the guest agent then finds. (Only unshifted keys:
	// chromedp types ">" as "." without the Shift modifier.)
	marker := fmt.Sprintf("typed-in-browser-%d", time.Now().UnixNano()%100000)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](`window.restoredConsole.focus()`)); err != nil {
		t.Fatalf("focus: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("touch /tmp/"+marker+"\r")); err != nil {
		t.Fatalf("typing: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() { // what the guest showed, to see why
			if code, _, shot := s.image("/v1/restores/"+id+"/screenshot", s.acme); code == 200 {
				p := filepath.Join(os.TempDir(), "restored-console-failure.png")
				_ = os.WriteFile(p, shot, 0o644)
				t.Logf("the guest's screen: %s", p)
			}
		}
	})
	eventually(t, time.Minute, "the file the typed command made, seen by the guest agent", func() bool {
		return guestRuns(s, id, "/bin/ls", "/tmp/"+marker)
	})
	// And the browser shows it: the typed line lights up more of the canvas.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("%s > %d", litPixels, lit+200), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the typed command never showed on the canvas (%d lit pixels before): %v", lit, err)
	}

	if dir := os.Getenv("RESTORED_DOCS_IMAGES"); dir != "" {
		time.Sleep(time.Second) // the typed line on screen
		if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "console-in-browser.png"), png, 0o644)
		}
	}

	// The URL was spent: neither the page nor its websocket open again.
	for _, u := range []string{url, url + "/ws"} {
		r, err := s.http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusGone {
			t.Fatalf("replayed %s: HTTP %d, want 410", u, r.StatusCode)
		}
	}
	s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
	s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
	s.assertGone(id)
}

// guestRuns runs a program in the restore's guest through the guest agent
// and reports whether it exited 0.
func guestRuns(s *kvmStack, id, path string, args ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.drv.GuestExec(ctx, vmspec.DomainName(id), path, args...)
	return err == nil && res.Signal == 0 && res.ExitCode == 0
}

// browser starts headless Chromium for the test (ended with it), trusting
// the server's certificate by its public key, as a portal's users would
// trust the cluster CA; its context has two minutes.
func (s *kvmStack) browser(t *testing.T) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (scripts/install-deps.sh installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("headless", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", serverSPKI(t, s.srv.DataDir)))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return ctx
}
