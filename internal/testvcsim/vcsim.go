// Package testvcsim runs govmomi's vCenter simulator (vcsim, a real
// implementation of the vSphere API built by `make tools`) as its own
// process on loopback for tests, with a TLS certificate of a test CA, and
// a recording proxy in front of it for the one call vcsim lacks
// (QueryChangedDiskAreas). Tests only: nothing of it ships.
package testvcsim

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/pki"
)

// Sim is a running vcsim.
type Sim struct {
	// URL is its SDK URL with the simulator's user and password.
	URL *url.URL
	// CAFile is the PEM of the CA its certificate (and the proxy's) chains
	// to; CertFile and KeyFile are that certificate.
	CAFile, CertFile, KeyFile string
}

// Start runs vcsim from root's .tools/bin until the test ends.
func Start(t testing.TB, root string) *Sim {
	t.Helper()
	bin, _ := filepath.Abs(filepath.Join(root, ".tools/bin/vcsim"))
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vcsim is not built: run `make tools` (it installs github.com/vmware/govmomi/vcsim): %v", err)
	}
	dir := t.TempDir()
	s := &Sim{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writeCert(t, s)
	// A user and password of its own: vcsim takes any login otherwise.
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	cmd := exec.Command(bin, "-l", "127.0.0.1:0", "-tlscert", s.CertFile, "-tlskey", s.KeyFile,
		"-username", "restored-test", "-password", hex.EncodeToString(pw))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`GOVC_URL=(\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		s.URL = parsed
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("vcsim printed no GOVC_URL within 30s")
		return nil
	}
}

// writeCert makes a CA and a certificate for 127.0.0.1.
func writeCert(t testing.TB, s *Sim) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("vcsim test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.RoleServer, Name: "vcsim"}, Public: key.Public(),
		Hosts: []string{"127.0.0.1", "localhost"}, Lifetime: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{s.CAFile, pki.EncodeCert(ca.Cert)}, {s.CertFile, pki.EncodeCert(cert)}, {s.KeyFile, keyPEM}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
