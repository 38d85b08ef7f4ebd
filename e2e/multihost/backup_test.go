package multihost

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testguest"
	"github.com/restored/restored/internal/testimage"
)

// backupFromAnotherHost runs restorectl backup run in the client's
// namespace (another machine as far as the network goes) against a guest
// on a's host: the snapshot's disks come through a's NBD gate over TLS.
func (l *lab) backupFromAnotherHost(t *testing.T, a *agentProc) {
	img, err := testimage.Path("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g, err := testguest.Start(ctx, l.drv, img, a.work, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = l.drv.EndBackup(cctx, a.hostID, g.Name)
		if err := g.Close(cctx); err != nil {
			t.Errorf("cleanup of guest %s: %v", g.Name, err)
		}
	})
	server := l.live()[0]
	backup, err := l.cluster.MintToken(ctx, server, "acme", "backup")
	if err != nil {
		t.Fatal(err)
	}
	guest, err := l.cluster.AssignGuest(ctx, server, a.hostID, g.Name, "acme", func() { a.signal(syscall.SIGHUP) })
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := testcluster.BuildCommand("../..", l.bins, "restorectl")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	cmd := l.client.Command(ctl, "--addr", server.GRPC, "--ca-cert", l.cluster.CACert, "--token", backup, "--output", "json",
		"backup", "run", "--guest", guest.Id, "--repository", repo)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("restorectl backup run in namespace %s: %v\n%s%s", l.client.NS, err, out.String(), errOut.String())
	}
	var sum backupjob.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, out.String())
	}
	t.Logf("backup from namespace %s of a guest on %s (%s): %s, read %d bytes\n%s", l.client.NS, a.hostID, a.ns.IP, sum.Kind, sum.BytesRead, errOut.String())
	if sum.Kind != "FULL" || sum.BytesRead == 0 || sum.RecoveryPointID == "" {
		t.Fatalf("the backup: %+v", sum)
	}
	if _, err := os.Stat(filepath.Join(sum.Dir, "manifest.json")); err != nil {
		t.Fatalf("the recovery point's manifest: %v", err)
	}
	if !strings.Contains(errOut.String(), "RELEASED") {
		t.Fatalf("the snapshot was not released:\n%s", errOut.String())
	}
}
