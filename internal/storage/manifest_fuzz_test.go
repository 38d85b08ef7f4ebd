package storage

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

// Whatever the bytes, the manifest parser returns an error or a manifest
// that keeps every rule: names in the safe alphabet, files inside the
// recovery point, at most MaxDisks disks of sane sizes, and it survives a
// round trip.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"id":"rp-1","tenant":"acme","asset":"web","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux",
		"disks":[{"name":"vda","file":"disk.raw","format":"raw","virtual_size":1048576}]}`))
	f.Add([]byte(`{"id":"rp-2","tenant":"acme","asset":"web","created_at":"2026-11-25T22:00:00Z","firmware":"uefi","os":"windows",
		"disks":[{"name":"vda","file":"d/x.qcow2","format":"qcow2","virtual_size":9223372036854775807,"backing":"rp-1"}]}`))
	f.Add([]byte(`{"id":"rp-3","tenant":"acme","asset":"web","created_at":"2026-11-25T22:00:00Z","firmware":"bios","os":"linux",
		"disks":[{"name":"vda","file":"../../etc/shadow","format":"raw","virtual_size":1}]}`))
	f.Add([]byte(`{"id":"` + strings.Repeat("a", 200) + `"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if !safeName.MatchString(m.ID) || !kinds.IsDNSLabel(m.Tenant) || !safeName.MatchString(m.Asset) {
			t.Fatalf("accepted names %q %q %q", m.ID, m.Tenant, m.Asset)
		}
		if len(m.Disks) == 0 || len(m.Disks) > MaxDisks {
			t.Fatalf("accepted %d disks", len(m.Disks))
		}
		for _, d := range m.Disks {
			if checkRelative(d.File) != nil || strings.Contains(d.File, "..") && strings.Contains("/"+d.File+"/", "/../") {
				t.Fatalf("accepted file %q", d.File)
			}
			if d.VirtualSize <= 0 || d.VirtualSize > MaxVirtualSize {
				t.Fatalf("accepted virtual_size %d", d.VirtualSize)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("an accepted manifest does not parse again: %v\n%s", err, again)
		}
	})
}
