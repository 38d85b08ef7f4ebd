package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/restored/restored/internal/kinds"
)

// ManifestName is the manifest's file name in a recovery point directory.
const ManifestName = "manifest.json"

const (
	maxManifestBytes = 1 << 20
	// MaxChainDepth is how many recovery points a backing chain may hold
	// below the top one; a deeper one is invalid.
	MaxChainDepth = 64
)

// RecoveryPoint is one recovery point found in a repository.
type RecoveryPoint struct {
	// ID, Tenant and Asset come from the manifest, or from the directory
	// names when the manifest cannot be read.
	ID, Tenant, Asset string
	// Dir is the recovery point's directory.
	Dir string
	// Manifest is nil when it could not be parsed.
	Manifest *Manifest
	// Valid is true when every check passed; Reason says why not.
	Valid  bool
	Reason string
	// Disks are the resolved disks (valid recovery points only).
	Disks []ResolvedDisk
}

// ResolvedDisk is a disk with its file checked and resolved.
type ResolvedDisk struct {
	Disk
	// Path is the disk file's absolute path, symlinks resolved.
	Path string
	// BackingPath is the resolved path of the backing disk, if any.
	BackingPath string
	// BackingFormat is the backing disk's format from its manifest.
	BackingFormat kinds.DiskFormat
	// Chain is the disk's whole backing chain, this disk's file first and
	// the full disk at the bottom last, every file checked.
	Chain []Layer
}

// Layer is one read-only image of a disk's backing chain, with the format
// its manifest declares (never probed).
type Layer struct {
	Path   string
	Format kinds.DiskFormat
}

// Skipped is a directory the scan could not even name as a recovery point.
type Skipped struct {
	Dir    string
	Reason string
}

// Repository is a tree of recovery points on one host.
type Repository struct {
	Root string
}

// Scan finds and validates every recovery point. One bad recovery point
// never stops the scan; it is returned invalid, with its reason.
func (r *Repository) Scan() ([]RecoveryPoint, []Skipped, error) {
	root, err := filepath.Abs(r.Root)
	if err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("repository %s is not a readable directory: %v", root, err)
	}
	var out []RecoveryPoint
	var skipped []Skipped
	tenants, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("read repository %s: %w", root, err)
	}
	for _, t := range tenants {
		tdir := filepath.Join(root, t.Name())
		if !t.IsDir() || hidden(t.Name()) {
			continue
		}
		if !kinds.IsDNSLabel(t.Name()) {
			skipped = append(skipped, Skipped{tdir, "tenant directory name is not a lowercase DNS label"})
			continue
		}
		assets, err := os.ReadDir(tdir)
		if err != nil {
			skipped = append(skipped, Skipped{tdir, err.Error()})
			continue
		}
		for _, a := range assets {
			adir := filepath.Join(tdir, a.Name())
			if !a.IsDir() || hidden(a.Name()) {
				continue
			}
			if !safeName.MatchString(a.Name()) {
				skipped = append(skipped, Skipped{adir, "asset directory name has characters outside A-Z a-z 0-9 . _ -"})
				continue
			}
			rps, err := os.ReadDir(adir)
			if err != nil {
				skipped = append(skipped, Skipped{adir, err.Error()})
				continue
			}
			for _, p := range rps {
				pdir := filepath.Join(adir, p.Name())
				if !p.IsDir() || hidden(p.Name()) {
					continue
				}
				if !safeName.MatchString(p.Name()) {
					skipped = append(skipped, Skipped{pdir, "recovery point directory name has characters outside A-Z a-z 0-9 . _ -"})
					continue
				}
				out = append(out, r.Inspect(t.Name(), a.Name(), p.Name()))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, skipped, nil
}

// hidden entries (".name") are work in progress, e.g. a backup job's
// recovery point before its manifest is written; a scan passes over them.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// Inspect validates one recovery point, named by its directories.
func (r *Repository) Inspect(tenant, asset, id string) RecoveryPoint {
	rp := RecoveryPoint{ID: id, Tenant: tenant, Asset: asset, Dir: filepath.Join(r.Root, tenant, asset, id)}
	disks, m, err := r.resolve(tenant, asset, id, map[string]bool{}, 0)
	rp.Manifest = m
	if err != nil {
		rp.Reason = err.Error()
		return rp
	}
	rp.Valid, rp.Disks = true, disks
	return rp
}

// readManifest reads and parses a recovery point's manifest, checking that
// it names the directory it is in.
func (r *Repository) readManifest(tenant, asset, id string) (*Manifest, string, error) {
	dir := filepath.Join(r.Root, tenant, asset, id)
	real, err := realDir(dir)
	if err != nil {
		return nil, "", err
	}
	f, err := openInside(real, ManifestName)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", ManifestName, err)
	}
	if len(data) > maxManifestBytes {
		return nil, "", fmt.Errorf("%s is larger than 1 MiB", ManifestName)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, "", err
	}
	if m.Tenant != tenant || m.Asset != asset || m.ID != id {
		return m, "", fmt.Errorf("manifest says %s/%s/%s but lies in %s/%s/%s: tenant, asset and id must match the directories",
			m.Tenant, m.Asset, m.ID, tenant, asset, id)
	}
	return m, real, nil
}

// resolve validates a recovery point and, recursively, its backing chain.
func (r *Repository) resolve(tenant, asset, id string, seen map[string]bool, depth int) ([]ResolvedDisk, *Manifest, error) {
	if depth > MaxChainDepth {
		return nil, nil, fmt.Errorf("backing chain is deeper than %d recovery points", MaxChainDepth)
	}
	if seen[id] {
		return nil, nil, fmt.Errorf("backing chain loops back to recovery point %s", id)
	}
	// seen holds the chain from the top down to here: two disks backed by
	// the same recovery point are not a loop.
	seen[id] = true
	defer delete(seen, id)
	m, dir, err := r.readManifest(tenant, asset, id)
	if err != nil {
		return nil, m, err
	}
	var out []ResolvedDisk
	for _, d := range m.Disks {
		rd, err := r.resolveDisk(tenant, asset, dir, d, seen, depth)
		if err != nil {
			return nil, m, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		out = append(out, rd)
	}
	return out, m, nil
}

func (r *Repository) resolveDisk(tenant, asset, dir string, d Disk, seen map[string]bool, depth int) (ResolvedDisk, error) {
	rd := ResolvedDisk{Disk: d}
	f, err := openInside(dir, d.File)
	if err != nil {
		return rd, err
	}
	defer f.Close()
	rd.Path = f.Name()
	rd.Chain = []Layer{{Path: rd.Path, Format: d.Format}}
	fi, err := f.Stat()
	if err != nil {
		return rd, err
	}
	if d.Format == kinds.Raw {
		// Never probed: the size of a raw disk is the size of its file.
		if fi.Size() != d.VirtualSize {
			return rd, fmt.Errorf("raw file is %d bytes but the manifest says virtual_size %d", fi.Size(), d.VirtualSize)
		}
		return rd, nil
	}
	h, err := ReadQCOW2Header(f)
	if err != nil {
		return rd, err
	}
	if h.Size != d.VirtualSize {
		return rd, fmt.Errorf("qcow2 virtual size is %d bytes but the manifest says %d", h.Size, d.VirtualSize)
	}
	if h.DataFile != "" || h.IncompatibleFeatures&incompatDataFile != 0 {
		return rd, fmt.Errorf("qcow2 uses an external data file (%q); recovery points must keep their data in the image", h.DataFile)
	}
	if d.Backing == "" {
		if h.BackingFile != "" {
			return rd, fmt.Errorf("qcow2 names backing file %q but the manifest declares no backing recovery point", h.BackingFile)
		}
		return rd, nil
	}
	if h.BackingFile == "" {
		return rd, fmt.Errorf("manifest declares backing recovery point %s but the qcow2 has no backing file", d.Backing)
	}
	// The backing recovery point: same tenant and asset, valid itself.
	bdisks, bm, err := r.resolve(tenant, asset, d.Backing, seen, depth+1)
	if err != nil {
		if bm == nil {
			return rd, fmt.Errorf("backing recovery point %s: %w", d.Backing, err)
		}
		return rd, fmt.Errorf("backing recovery point %s is invalid: %w", d.Backing, err)
	}
	var want *ResolvedDisk
	for i := range bdisks {
		if bdisks[i].Name == d.Name {
			want = &bdisks[i]
		}
	}
	if want == nil {
		return rd, fmt.Errorf("backing recovery point %s has no disk named %s", d.Backing, d.Name)
	}
	// Where would qemu look? Relative names are relative to the image's directory.
	named := h.BackingFile
	if !filepath.IsAbs(named) {
		named = filepath.Join(dir, named)
	}
	got, err := filepath.EvalSymlinks(named)
	if err != nil || got != want.Path {
		return rd, fmt.Errorf("qcow2 backing file %q is not disk %s of recovery point %s", h.BackingFile, d.Name, d.Backing)
	}
	if h.BackingFormat != "" && h.BackingFormat != want.Format.String() {
		return rd, fmt.Errorf("qcow2 says its backing file is %s but the backing manifest says %s", h.BackingFormat, want.Format)
	}
	rd.BackingPath, rd.BackingFormat = want.Path, want.Format
	rd.Chain = append(rd.Chain, want.Chain...)
	return rd, nil
}

// realDir resolves dir's symlinks.
func realDir(dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("recovery point directory: %w", err)
	}
	return filepath.Abs(real)
}

var errOutside = errors.New("leads outside the recovery point's directory")

// openInside opens name below dir for reading, refusing any path that leaves
// dir (through "..", an absolute path or a symlink) and anything that is not
// a regular file.
func openInside(dir, name string) (*os.File, error) {
	if err := checkRelative(name); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !strings.HasPrefix(real, dir+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s %w", name, errOutside)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return f, nil
}
