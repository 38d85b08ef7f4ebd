package backupjob

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
)

// The depth of a chain of recovery points is counted from the manifests,
// so a job takes a FULL before the chain gets too deep to be valid.
func TestChainDepthCountsTheRecoveryPointsBelow(t *testing.T) {
	root := t.TempDir()
	write := func(id, backing string) {
		dir := filepath.Join(root, "acme", "web", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		m := storage.Manifest{ID: id, Tenant: "acme", Asset: "web", CreatedAt: time.Now(), Firmware: kinds.BIOS, OS: kinds.Linux,
			Disks: []storage.Disk{{Name: "vda", File: "vda.qcow2", Format: kinds.QCOW2, VirtualSize: 1 << 20, Backing: backing}}}
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, storage.ManifestName), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rp0", "")
	prev := "rp0"
	for _, id := range []string{"rp1", "rp2", "rp3"} {
		write(id, prev)
		prev = id
	}
	repo := &storage.Repository{Root: root}
	for id, want := range map[string]int{"rp0": 0, "rp1": 1, "rp3": 3} {
		b, _ := os.ReadFile(filepath.Join(root, "acme", "web", id, storage.ManifestName))
		m, err := storage.ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := chainDepth(repo, &storage.RecoveryPoint{ID: id, Tenant: "acme", Asset: "web", Manifest: m}); got != want {
			t.Errorf("%s: depth %d, want %d", id, got, want)
		}
	}
	if got := chainDepth(repo, nil); got != 0 {
		t.Errorf("no recovery point: depth %d", got)
	}
}
