package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestASiteFileBecomesABatchWithEachItemsOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "site.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b, err := readSite(write(`request_id: site-a
items:
  - {recovery_point: rp-web, memory_mib: 512, network: isolated, ttl: 2h}
  - recovery_point: rp-db
    mode: verify
    vcpus: 2
  - {recovery_point: rp-files, mode: export, read_write: true, protocol: iscsi}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if b.RequestId != "site-a" || len(b.Items) != 3 {
		t.Fatalf("batch %v", b)
	}
	web, db, files := b.Items[0], b.Items[1], b.Items[2]
	if web.RecoveryPointId != "rp-web" || web.MemoryMib != 512 || web.Network.Kind != restorev1.NetworkKind_NETWORK_KIND_ISOLATED || web.TtlSeconds != 7200 || web.Mode != restorev1.Mode_MODE_VIRTUALIZE {
		t.Errorf("web: %v", web)
	}
	if db.Mode != restorev1.Mode_MODE_VERIFY || db.Vcpus != 2 || db.Firmware != restorev1.Firmware_FIRMWARE_AUTO {
		t.Errorf("db: %v", db)
	}
	if files.Mode != restorev1.Mode_MODE_EXPORT || !files.Export.GetReadWrite() || files.Export.GetProtocol() != restorev1.ExportProtocol_EXPORT_PROTOCOL_ISCSI {
		t.Errorf("files: %v", files)
	}
	if b, err := readSite(write("items: [{recovery_point: rp-1}]\n"), "from-flag"); err != nil || b.RequestId != "from-flag" {
		t.Errorf("--request-id: %v %v", b, err)
	}
	for text, says := range map[string]string{
		"items: [{recovery_point: rp-1}]\n":                                  "give the batch a request_id",
		"request_id: x\nitems: [{recovery_point: rp-1, memory: 5}]\n":        "field memory not found",
		"request_id: x\nitems: [{recovery_point: rp-1, mode: sideways}]\n":   "items[0]",
		"request_id: x\nitems: [{recovery_point: rp-1, read_write: true}]\n": "read-write and protocol are for mode export",
	} {
		if _, err := readSite(write(text), ""); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want %q", text, err, says)
		}
	}
}
