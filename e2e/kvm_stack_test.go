package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

// kvmStack is restored and one hypervisor agent as processes on real
// libvirtd and QEMU, with tenants acme and globex and a repository holding
// the test image as acme's recovery point rp-1.
type kvmStack struct {
	t                *testing.T
	srv              *testcluster.Proc
	cluster          *testcluster.Cluster
	admin            string
	acme, globex     string
	agentBin         string
	joinToken, caPin string
	repo, work, disk string
	agentLog         string
	agent            *exec.Cmd
	// host is the agent's host id, unique per stack: agents reconcile only
	// their own host's domains, so stacks sharing libvirtd never collide.
	host      string
	agentDone chan struct{}
	drv       *kvm.Driver
	// ca is the cluster CA's certificate; http trusts it.
	ca   string
	http *http.Client
}

// fileFacts is a file's sha256, owner and mode.
func fileFacts(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("sha256=%x uid=%d gid=%d mode=%v", h.Sum(nil), st.Uid, st.Gid, fi.Mode())
}

func startKVMStack(t *testing.T) *kvmStack {
	t.Helper()
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	restoredBin, err := testcluster.BuildCommand("..", bins, "restored")
	if err != nil {
		t.Fatal(err)
	}
	s := &kvmStack{t: t, agentLog: filepath.Join(bins, "agent.log"), host: fmt.Sprintf("kvm-%d", os.Getpid())}
	if s.agentBin, err = testcluster.BuildCommand("..", bins, "hypervisor-agent"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	novnc, _ := filepath.Abs("../web/node_modules/@novnc/novnc")
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: restoredBin, Dir: t.TempDir(), N: 1, Args: []string{"--scheduler-interval", "250ms", "--novnc-dir", novnc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	s.srv, s.admin, s.ca, s.cluster = c.Procs[0], c.Token, c.CACert, c
	s.http = httpsClient(t, s.ca)
	for _, tenant := range []string{"acme", "globex"} {
		if err := c.CreateTenant(ctx, s.srv, tenant); err != nil {
			t.Fatal(err)
		}
	}
	token := func(tenant, role string) string {
		secret, err := c.MintToken(ctx, s.srv, tenant, role)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	s.acme, s.globex = token("acme", "partner"), token("globex", "partner")
	if s.joinToken, s.caPin, err = c.JoinToken(ctx, s.srv, s.host); err != nil {
		t.Fatal(err)
	}

	s.repo = testimage.DirForQEMU(t, "restored-repo-")
	dir, err := testimage.AddRecoveryPoint(s.repo, testimage.RecoveryPoint{ID: "rp-1", Tenant: "acme", Asset: "web-01", From: img})
	if err != nil {
		t.Fatal(err)
	}
	s.disk = filepath.Join(dir, "disk0.raw")
	s.work = testimage.DirForQEMU(t, "restored-work-")
	s.drv = kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.drv.Close)
	s.startAgent()
	t.Cleanup(func() {
		s.killAgent()
		if t.Failed() {
			b, _ := os.ReadFile(s.agentLog)
			t.Logf("---- agent log ----\n%s", b)
			b, _ = os.ReadFile(s.srv.LogPath)
			t.Logf("---- restored log ----\n%s", b)
		}
	})
	eventually(t, 60*time.Second, "rp-1 reported valid", func() bool {
		code, rp := s.rest("GET", "/v1/recovery-points/rp-1", s.acme, nil)
		return code == 200 && rp["valid"] == true
	})
	return s
}

func (s *kvmStack) rpDir(id string) string { return s.rpDirOf("web-01", id) }

func (s *kvmStack) rpDirOf(asset, id string) string {
	dir := filepath.Join(s.repo, "acme", asset, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for d := dir; d != s.repo; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	return dir
}

func (s *kvmStack) manifest(id, disks string) {
	m := fmt.Sprintf(`{"id":%q,"tenant":"acme","asset":"web-01","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux","disks":%s}`, id, disks)
	if err := os.WriteFile(filepath.Join(s.rpDir(id), "manifest.json"), []byte(m), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// imageRecoveryPoint adds the test image as recovery point id of acme's
// asset, created at the given time, and waits until the agent reported it.
func (s *kvmStack) imageRecoveryPoint(asset, id string, created time.Time) {
	s.t.Helper()
	img, err := testimage.Path("..")
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := testimage.AddRecoveryPoint(s.repo, testimage.RecoveryPoint{ID: id, Tenant: "acme", Asset: asset, Created: created, From: img}); err != nil {
		s.t.Fatal(err)
	}
	_ = s.agent.Process.Signal(syscall.SIGHUP) // rescan now
	eventually(s.t, 30*time.Second, id+" reported", func() bool {
		code, rp := s.rest("GET", "/v1/recovery-points/"+id, s.acme, nil)
		return code == 200 && rp["valid"] == true
	})
}

// blankRecoveryPoint adds a recovery point whose 1 GiB disk is all zeros
// (no bootloader) and waits until the agent reported it.
func (s *kvmStack) blankRecoveryPoint(id string) {
	s.t.Helper()
	if _, err := testimage.AddRecoveryPoint(s.repo, testimage.RecoveryPoint{ID: id, Tenant: "acme", Asset: "web-01", Size: 1 << 30}); err != nil {
		s.t.Fatal(err)
	}
	_ = s.agent.Process.Signal(syscall.SIGHUP) // rescan now
	eventually(s.t, 30*time.Second, id+" reported", func() bool {
		code, _ := s.rest("GET", "/v1/recovery-points/"+id, s.acme, nil)
		return code == 200
	})
}

// assignGuest assigns the domain name to acme once the agent reports it,
// as an operator does, and returns the guest's id.
func (s *kvmStack) assignGuest(name string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := s.cluster.AssignGuest(ctx, s.srv, s.host, name, "acme", func() { _ = s.agent.Process.Signal(syscall.SIGHUP) })
	if err != nil {
		s.t.Fatal(err)
	}
	return g.Id
}

// startAgent starts the agent process with the stack's flags plus extra.
func (s *kvmStack) startAgent(extra ...string) {
	s.t.Helper()
	logf, err := os.OpenFile(s.agentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	// The first start enrolls with the join token; a restart finds the
	// certificate it kept in its work dir.
	args := []string{"--server", s.srv.GRPC, "--ca-fingerprint", s.caPin, "--host-id", s.host, "--join-token", s.joinToken,
		"--repository", s.repo, "--work-dir", s.work, "--reserve-memory-mib", "0", "--rescan-interval", "10m",
		"--boot-timeout", "90s", "--nbd-addr", "127.0.0.1:0"}
	cmd := exec.Command(s.agentBin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.agent, s.agentDone = cmd, done
}

// killAgent kills the agent with SIGKILL (by PID) and waits for it.
func (s *kvmStack) killAgent() {
	if s.agent == nil {
		return
	}
	_ = s.agent.Process.Kill()
	<-s.agentDone
	s.agent = nil
}

func (s *kvmStack) rest(method, path, tok string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "https://"+s.srv.HTTP+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// image GETs path with tok and returns the status, content type and body.
func (s *kvmStack) image(path, tok string) (int, string, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", "https://"+s.srv.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// create posts a restore as acme and registers a cleanup that leaves no domain.
func (s *kvmStack) create(body map[string]any) string {
	s.t.Helper()
	code, created := s.rest("POST", "/v1/restores", s.acme, body)
	if code != 200 {
		s.t.Fatalf("create restore: HTTP %d %v", code, created)
	}
	id := created["id"].(string)
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.drv.Destroy(ctx, vmspec.DomainName(id))
	})
	return id
}

// waitState waits until the restore is in state (and cond holds, if given).
func (s *kvmStack) waitState(id, state string, timeout time.Duration, cond func(map[string]any) bool) map[string]any {
	s.t.Helper()
	var got map[string]any
	deadline := time.Now().Add(timeout)
	for {
		_, got = s.rest("GET", "/v1/restores/"+id, s.acme, nil)
		if got["state"] == "RESTORE_STATE_FAILED" && state != "RESTORE_STATE_FAILED" {
			s.t.Fatalf("restore failed: %v", got["state_reason"])
		}
		if got["state"] == state && (cond == nil || cond(got)) {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for restore %s %s; it is %v: %v", timeout, id, state, got["state"], got["state_reason"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func verified(r map[string]any) bool {
	b, _ := r["boot"].(map[string]any)
	return b != nil && b["verified"] == true
}

// assertGone checks libvirt and the work dir hold nothing of the restore.
func (s *kvmStack) assertGone(id string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doms, err := s.drv.List(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, d := range doms {
		if d.Meta.RestoreID == id {
			s.t.Fatalf("domain %s is still defined", d.Name)
		}
	}
	if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
		s.t.Fatalf("the restore's work dir is still there: %v", err)
	}
}

// qcow2Pointing writes a qcow2 header whose backing file is target.
func qcow2Pointing(t *testing.T, path, target string, size int64) {
	t.Helper()
	be := binary.BigEndian
	buf := make([]byte, 104)
	be.PutUint32(buf[0:], 0x514649fb)
	be.PutUint32(buf[4:], 3)
	be.PutUint32(buf[20:], 16)
	be.PutUint64(buf[24:], uint64(size))
	be.PutUint32(buf[96:], 4)
	be.PutUint32(buf[100:], 104)
	buf = append(buf, make([]byte, 8)...) // end of extensions
	be.PutUint64(buf[8:], uint64(len(buf)))
	be.PutUint32(buf[16:], uint32(len(target)))
	buf = append(buf, target...)
	buf = append(buf, make([]byte, 512)...)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
