package storage

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/restored/restored/internal/kinds"
)

// Manifest describes one recovery point (manifest.json).
type Manifest struct {
	ID        string         `json:"id"`
	Tenant    string         `json:"tenant"`
	Asset     string         `json:"asset"`
	CreatedAt time.Time      `json:"created_at"`
	Firmware  kinds.Firmware `json:"firmware"`
	OS        kinds.OSFamily `json:"os"`
	Disks     []Disk         `json:"disks"`
	// Checkpoint is the hypervisor checkpoint this recovery point's data
	// matches, written by backup jobs: the next incremental's changes are
	// counted from it, so it goes on top of this recovery point.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Disk is one disk of a recovery point.
type Disk struct {
	Name        string           `json:"name"`
	File        string           `json:"file"`
	Format      kinds.DiskFormat `json:"format"`
	VirtualSize int64            `json:"virtual_size"`
	// Backing is the id of the recovery point (same tenant and asset) whose
	// disk of the same name this qcow2 sits on; empty for a full disk.
	Backing string `json:"backing,omitempty"`
}

// ids, assets and disk names: a conservative file-name alphabet.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Limits of a manifest: more disks than a domain can hold, or a disk
// larger than any this product restores, is a hostile or broken manifest.
const (
	MaxDisks       = 64
	MaxVirtualSize = 64 << 40 // 64 TiB
)

// ParseManifest decodes and checks a manifest on its own (without the files).
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json is not valid: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) check() error {
	switch {
	case !safeName.MatchString(m.ID):
		return fmt.Errorf("manifest id %q: use 1-128 characters A-Z a-z 0-9 . _ -, starting with a letter or digit", m.ID)
	case !kinds.IsDNSLabel(m.Tenant):
		return fmt.Errorf("manifest tenant %q is not a lowercase DNS label", m.Tenant)
	case !safeName.MatchString(m.Asset):
		return fmt.Errorf("manifest asset %q: use 1-128 characters A-Z a-z 0-9 . _ -", m.Asset)
	case m.CreatedAt.IsZero():
		return fmt.Errorf("manifest created_at is missing (RFC 3339, e.g. 2026-11-25T22:00:00Z)")
	case !m.Firmware.Valid():
		return fmt.Errorf("manifest firmware is missing: bios or uefi")
	case !m.OS.Valid():
		return fmt.Errorf("manifest os is missing: linux, windows or other")
	case len(m.Disks) == 0:
		return fmt.Errorf("manifest lists no disks")
	case len(m.Disks) > MaxDisks:
		return fmt.Errorf("manifest lists %d disks; at most %d are allowed", len(m.Disks), MaxDisks)
	}
	names := map[string]bool{}
	for i, d := range m.Disks {
		switch {
		case !safeName.MatchString(d.Name):
			return fmt.Errorf("disks[%d].name %q: use 1-128 characters A-Z a-z 0-9 . _ -", i, d.Name)
		case names[d.Name]:
			return fmt.Errorf("disk name %q is listed twice", d.Name)
		case !d.Format.Valid():
			return fmt.Errorf("disk %s: format is missing: raw or qcow2", d.Name)
		case d.VirtualSize <= 0 || d.VirtualSize > MaxVirtualSize:
			return fmt.Errorf("disk %s: virtual_size must be a positive number of bytes up to 64 TiB, got %d", d.Name, d.VirtualSize)
		case d.Backing != "" && d.Format != kinds.QCOW2:
			return fmt.Errorf("disk %s: only a qcow2 disk can have a backing recovery point", d.Name)
		case d.Backing != "" && !safeName.MatchString(d.Backing):
			return fmt.Errorf("disk %s: backing %q is not a recovery point id", d.Name, d.Backing)
		case d.Backing == m.ID:
			return fmt.Errorf("disk %s: a recovery point cannot back itself", d.Name)
		}
		if err := checkRelative(d.File); err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		names[d.Name] = true
	}
	return nil
}

// checkRelative refuses a file name that could leave the recovery point's
// directory by its spelling (symlinks are checked on disk).
func checkRelative(file string) error {
	switch {
	case file == "":
		return fmt.Errorf("file is empty")
	case strings.HasPrefix(file, "/"):
		return fmt.Errorf("file %q is absolute; name a file inside the recovery point's directory", file)
	case strings.ContainsAny(file, "\x00\\"):
		return fmt.Errorf("file %q has a forbidden character", file)
	}
	for _, part := range strings.Split(file, "/") {
		if part == ".." || part == "." || part == "" {
			return fmt.Errorf("file %q must be a plain path inside the recovery point's directory (no '..', '.' or empty parts)", file)
		}
	}
	return nil
}
