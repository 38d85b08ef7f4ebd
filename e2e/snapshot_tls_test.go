package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/cli"
	"github.com/restored/restored/internal/nbd"
)

// snapshotCreds asks for a snapshot's NBD client certificate over REST and
// writes it (GnuTLS names) into a directory; it returns the client TLS too.
func (s *kvmStack) snapshotCreds(token, id string) (*tls.Config, string) {
	s.t.Helper()
	return s.readerCreds("/v1/snapshots/"+id+"/credentials", token)
}

// readerCreds asks path for NBD reader credentials (a snapshot's or an
// export's) and writes them into a directory.
func (s *kvmStack) readerCreds(path, token string) (*tls.Config, string) {
	s.t.Helper()
	code, body := s.rest("POST", path, token, map[string]any{})
	if code != 200 {
		s.t.Fatalf("POST %s: HTTP %d %v", path, code, body)
	}
	cr := &restorev1.IssueSnapshotCredentialsResponse{CaCert: body["ca_cert"].(string), Cert: body["cert"].(string), Key: body["key"].(string)}
	tlsc, err := backupjob.TLSConfig(cr)
	if err != nil {
		s.t.Fatal(err)
	}
	dir := s.t.TempDir()
	if err := cli.WriteSnapshotCredentials(dir, cr); err != nil {
		s.t.Fatal(err)
	}
	return tlsc, dir
}

// dialExport opens a snapshot disk's export with tlsc (nil: plaintext).
func dialExport(uri string, tlsc *tls.Config) (*nbd.Conn, error) {
	t, err := nbd.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return nbd.Dial(ctx, t.Network, t.Address, nbd.Options{Export: t.Export, TLS: tlsc})
}

// checkExportsTakeOnlyTLSWithTheSnapshotsCertificate proves, on a READY
// snapshot, what its NBD gate refuses and what it serves, to our client,
// to nbdinfo (libnbd) and to qemu-img.
func (s *kvmStack) checkExportsTakeOnlyTLSWithTheSnapshotsCertificate(t *testing.T, backup string, snap map[string]any, expiredCreds *tls.Config) {
	sid := snap["id"].(string)
	disk := snap["disks"].([]any)[0].(map[string]any)
	uri := disk["nbd_uri"].(string)
	if ca, _ := snap["nbd_ca_cert"].(string); !strings.HasPrefix(uri, "nbds://") || !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Fatalf("the READY answer: nbd_uri %q, nbd_ca_cert %q", uri, ca)
	}
	if code, _ := s.rest("POST", "/v1/snapshots/"+sid+"/credentials", s.globex, map[string]any{}); code != 404 {
		t.Fatalf("globex got credentials for acme's snapshot: HTTP %d", code)
	}
	tlsc, dir := s.snapshotCreds(backup, sid)
	target, _ := nbd.ParseURI(uri)
	host, port, _ := strings.Cut(target.Address, ":")
	libnbdURI := fmt.Sprintf("%s?tls-certificates=%s", uri, url.QueryEscape(dir))

	c, err := dialExport(uri, tlsc)
	if err != nil {
		t.Fatalf("our client with the snapshot's certificate: %v", err)
	}
	if fmt.Sprint(c.Size()) != fmt.Sprint(disk["size"]) {
		t.Fatalf("the export's size %d, the disk's %v", c.Size(), disk["size"])
	}
	p := make([]byte, 4096)
	if _, err := c.ReadAt(p, 0); err != nil {
		t.Fatalf("read over TLS: %v", err)
	}
	c.Close()

	refused := []struct {
		name string
		tlsc *tls.Config
		want string
	}{
		{"plaintext", nil, "TLS"},
		// Its lease (10 s) bounded its life: expired, the TLS handshake refuses it.
		{"the lease-released snapshot's certificate", expiredCreds, "certificate"},
	}
	for _, r := range refused {
		if c, err := dialExport(uri, r.tlsc); err == nil || !strings.Contains(err.Error(), r.want) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("%s: the gate answered %v, want a refusal saying %q", r.name, err, r.want)
		}
	}
	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), err
	}
	// nbdinfo (libnbd): no listing, with or without TLS; the size over TLS.
	if out, err := run("nbdinfo", "--list", "nbd://"+target.Address); err == nil || strings.Contains(out, target.Export) {
		t.Fatalf("nbdinfo --list in plaintext: %v\n%s", err, out)
	}
	if out, _ := run("nbdinfo", "--list", fmt.Sprintf("nbds://%s/?tls-certificates=%s", target.Address, url.QueryEscape(dir))); strings.Contains(out, target.Export) {
		t.Fatalf("nbdinfo --list over TLS listed the export:\n%s", out)
	}
	out, err := run("nbdinfo", "--size", libnbdURI)
	if err != nil || strings.TrimSpace(out) != fmt.Sprint(disk["size"]) {
		t.Fatalf("nbdinfo --size over TLS: %v %q, want %v", err, out, disk["size"])
	}
	// qemu-img (QEMU's NBD client) over TLS.
	out, err = run("qemu-img", "info", "--output", "json", "--object", "tls-creds-x509,id=tls0,endpoint=client,dir="+dir, "--image-opts",
		fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%s,export=%s,tls-creds=tls0", host, port, target.Export))
	if err != nil || !strings.Contains(out, `"virtual-size": `+fmt.Sprint(disk["size"])) {
		t.Fatalf("qemu-img info over TLS: %v\n%s", err, out)
	}
}
