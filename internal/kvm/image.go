package kvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/storage"
)

// IMAGE restores on KVM: each disk of the recovery point converted by
// storage.Convert (its chain spelled out, low priority, memory-limited)
// into the restore's work dir, first under a ".part" name; the file list
// (image.json) is written last, so a restore whose list exists has every
// file whole, and one interrupted midway is made again from the start.

func (h *Host) imageList(id string) string { return filepath.Join(h.restoreDir(id), "image.json") }

// Image implements hypervisor.Imager.
func (h *Host) Image(ctx context.Context, spec hypervisor.RestoreSpec, format kinds.ImageFormat) ([]hypervisor.ImageFile, error) {
	rv := revert.New()
	defer rv.Fail()
	dir, err := h.freshRestoreDir(ctx, spec.ID, rv)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.ImageFile
	for i, d := range spec.Disks {
		name := d.Name + "." + format.Extension()
		path := filepath.Join(dir, name)
		step := fmt.Sprintf("converting disk %s (%d of %d) to %s", d.Name, i+1, len(spec.Disks), format)
		report := func(done, total int64) {
			if spec.Progress != nil {
				spec.Progress(hypervisor.Progress{Step: step, Done: done, Total: total})
			}
		}
		report(0, d.Size)
		if err := storage.Convert(ctx, storage.ConvertSpec{Chain: d.Chain, Out: path + ".part", Format: format, Size: d.Size, Progress: report}); err != nil {
			return nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		if err := os.Rename(path+".part", path); err != nil {
			return nil, err
		}
		size, sum, err := digest(path)
		if err != nil {
			return nil, err
		}
		out = append(out, hypervisor.ImageFile{Disk: d.Name, Name: name, Path: path, Size: size, SHA256: sum})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.imageList(spec.ID), b, 0o600); err != nil {
		return nil, err
	}
	rv.Success()
	return out, nil
}

// images is a restore's finished files (nil: none, or not all made).
func (h *Host) images(id string) []hypervisor.ImageFile {
	b, err := os.ReadFile(h.imageList(id))
	if err != nil {
		return nil
	}
	var files []hypervisor.ImageFile
	if json.Unmarshal(b, &files) != nil {
		return nil
	}
	return files
}

// ImageFile implements hypervisor.Imager.
func (h *Host) ImageFile(id, disk string) (hypervisor.ImageFile, bool) {
	for _, f := range h.images(id) {
		if f.Disk == disk && filepath.Dir(f.Path) == h.restoreDir(id) {
			return f, true
		}
	}
	return hypervisor.ImageFile{}, false
}

// digest is a file's size and SHA-256 (hex).
func digest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

var _ hypervisor.Imager = (*Host)(nil)
