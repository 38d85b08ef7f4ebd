package testimage

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RecoveryPoint is a recovery point for a test repository: one raw disk,
// a copy of From (an image) or, without it, Size bytes of zeros (which
// boot nothing).
type RecoveryPoint struct {
	ID, Tenant, Asset string
	// Created is its creation time (default 2026-11-25 22:00 UTC).
	Created time.Time
	From    string
	Size    int64
}

// AddRecoveryPoint writes rp into the repository at root as an agent reads
// it (<root>/<tenant>/<asset>/<id>/manifest.json and disk0.raw), readable
// by QEMU (user libvirt-qemu), and returns its directory.
func AddRecoveryPoint(root string, rp RecoveryPoint) (string, error) {
	dir := filepath.Join(root, rp.Tenant, rp.Asset, rp.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	disk := filepath.Join(dir, "disk0.raw")
	if rp.From != "" {
		if out, err := exec.Command("cp", "--sparse=always", rp.From, disk).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copy %s: %v %s", rp.From, err, out)
		}
	} else {
		f, err := os.Create(disk)
		if err != nil {
			return "", err
		}
		err = f.Truncate(rp.Size)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	fi, err := os.Stat(disk)
	if err != nil {
		return "", err
	}
	created := rp.Created
	if created.IsZero() {
		created = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	}
	type disk0 struct {
		Name        string `json:"name"`
		File        string `json:"file"`
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual_size"`
	}
	m, _ := json.Marshal(map[string]any{
		"id": rp.ID, "tenant": rp.Tenant, "asset": rp.Asset, "created_at": created.UTC().Format(time.RFC3339),
		"firmware": "bios", "os": "linux", "disks": []disk0{{Name: "disk0", File: "disk0.raw", Format: "raw", VirtualSize: fi.Size()}},
	})
	manifest := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(manifest, m, 0o644); err != nil {
		return "", err
	}
	// QEMU runs as libvirt-qemu: it must read the disks and reach them.
	for _, p := range []string{disk, manifest} {
		_ = os.Chmod(p, 0o644)
	}
	for d := dir; d != filepath.Dir(root); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	return dir, nil
}

// DirForQEMU makes a temporary directory QEMU (user libvirt-qemu) can
// traverse, for repositories and agent work dirs; it is removed when the
// test ends.
func DirForQEMU(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
