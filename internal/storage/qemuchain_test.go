package storage

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

// The chain qemu-img converts is spelled out layer by layer: nothing in
// the backup is probed, and the base has no backing at all.
func TestAChainIsSpelledOutForQEMU(t *testing.T) {
	got, err := QEMUChain([]Layer{{Path: "/r/inc/d.qcow2", Format: kinds.QCOW2}, {Path: "/r/full/d.qcow2", Format: kinds.QCOW2}, {Path: "/r/base/d.raw", Format: kinds.Raw}})
	if err != nil || !strings.HasPrefix(got, "json:") {
		t.Fatal(got, err)
	}
	var tree map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "json:")), &tree); err != nil {
		t.Fatal(err)
	}
	want := `{"backing":{"backing":{"driver":"raw","file":{"driver":"file","filename":"/r/base/d.raw"}},"driver":"qcow2","file":{"driver":"file","filename":"/r/full/d.qcow2"}},"driver":"qcow2","file":{"driver":"file","filename":"/r/inc/d.qcow2"}}`
	if b, _ := json.Marshal(tree); string(b) != want {
		t.Fatalf("chain\n%s\nwant\n%s", b, want)
	}
	one, _ := QEMUChain([]Layer{{Path: "/r/full/d.qcow2", Format: kinds.QCOW2}})
	if !strings.Contains(one, `"backing":null`) {
		t.Fatalf("a lone qcow2 may still name a backing file in its header: %s", one)
	}
	if _, err := QEMUChain(nil); err == nil {
		t.Fatal("a disk without layers")
	}
}
