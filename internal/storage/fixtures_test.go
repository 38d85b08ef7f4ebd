package storage

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/kinds"
)

// qcow2Spec describes a hand-made qcow2 header for tests: we write hostile
// headers byte by byte, so no tool is needed to make them.
type qcow2Spec struct {
	size          int64
	backing       string
	backingFormat string
	dataFile      string
	incompat      uint64
	// set overwrites header fields: offset → a big-endian value of the
	// field's width (4 or 8 bytes).
	set map[int]uint64
}

func writeQCOW2(t *testing.T, path string, s qcow2Spec) {
	t.Helper()
	if err := os.WriteFile(path, qcow2Bytes(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// qcow2Bytes is the header (and a little padding) of a qcow2 v3 image.
func qcow2Bytes(s qcow2Spec) []byte {
	be := binary.BigEndian
	buf := make([]byte, 104)
	be.PutUint32(buf[0:], qcow2Magic)
	be.PutUint32(buf[4:], 3)
	be.PutUint32(buf[20:], 16) // cluster bits
	be.PutUint64(buf[24:], uint64(s.size))
	be.PutUint64(buf[72:], s.incompat)
	be.PutUint32(buf[96:], 4)    // refcount order
	be.PutUint32(buf[100:], 104) // header length
	for off, v := range s.set {
		switch off {
		case 8, 24, 40, 48, 72, 80, 88:
			be.PutUint64(buf[off:], v)
		default:
			be.PutUint32(buf[off:], uint32(v))
		}
	}
	ext := func(typ uint32, data string) {
		h := make([]byte, 8)
		be.PutUint32(h[0:], typ)
		be.PutUint32(h[4:], uint32(len(data)))
		buf = append(buf, h...)
		buf = append(buf, data...)
		for len(buf)%8 != 0 {
			buf = append(buf, 0)
		}
	}
	if s.backingFormat != "" {
		ext(extBackingFormat, s.backingFormat)
	}
	if s.dataFile != "" {
		ext(extExternalDataFile, s.dataFile)
	}
	ext(extEnd, "")
	if s.backing != "" {
		be.PutUint64(buf[8:], uint64(len(buf)))
		be.PutUint32(buf[16:], uint32(len(s.backing)))
		buf = append(buf, s.backing...)
	}
	return append(buf, make([]byte, 1024)...)
}

// repo builds recovery points under a temporary root.
type repo struct {
	t    *testing.T
	root string
}

func newRepo(t *testing.T) *repo { return &repo{t: t, root: t.TempDir()} }

func (r *repo) dir(tenant, asset, id string) string {
	d := filepath.Join(r.root, tenant, asset, id)
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *repo) manifest(tenant, asset, id string, m Manifest) {
	r.t.Helper()
	r.manifestEdited(tenant, asset, id, m, "", "")
}

// manifestEdited writes m's manifest with the text from replaced by to: a
// value the typed fields cannot hold (an unknown format, say).
func (r *repo) manifestEdited(tenant, asset, id string, m Manifest, from, to string) {
	r.t.Helper()
	if m.ID == "" {
		m.ID = id
	}
	if m.Tenant == "" {
		m.Tenant = tenant
	}
	if m.Asset == "" {
		m.Asset = asset
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	}
	if m.Firmware == 0 {
		m.Firmware = kinds.BIOS
	}
	if m.OS == 0 {
		m.OS = kinds.Linux
	}
	data, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	if from != "" {
		data = []byte(strings.Replace(string(data), from, to, 1))
	}
	if err := os.WriteFile(filepath.Join(r.dir(tenant, asset, id), ManifestName), data, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// raw writes a sparse raw disk of size bytes.
func (r *repo) raw(tenant, asset, id, file string, size int64) {
	r.t.Helper()
	f, err := os.Create(filepath.Join(r.dir(tenant, asset, id), file))
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		r.t.Fatal(err)
	}
}

// full makes a valid full recovery point with one raw disk.
func (r *repo) full(tenant, asset, id string, size int64) {
	r.raw(tenant, asset, id, "disk0.raw", size)
	r.manifest(tenant, asset, id, Manifest{Disks: []Disk{{Name: "disk0", File: "disk0.raw", Format: kinds.Raw, VirtualSize: size}}})
}
