package vmspec

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden XML files")

// Whole domains, pinned: a reviewer reads testdata/*.xml to see exactly what
// libvirt gets.
func TestGoldenDomains(t *testing.T) {
	uefiWindows := linuxInput()
	uefiWindows.OS, uefiWindows.Firmware, uefiWindows.NVRAM = kinds.Windows, kinds.UEFI, "/var/lib/restored-agent/work/019a6c2e/nvram.fd"
	uefiWindows.Network, uefiWindows.Bridge = kinds.Bridged, "br0"
	uefiWindows.VCPUs, uefiWindows.MemoryMiB = 2, 4096
	incremental := linuxInput()
	incremental.Network, incremental.Bridge = kinds.Isolated, "rsti019a6c2e7f3"
	incremental.Disks[0].Chain = []ChainElement{{Path: "/srv/repo/acme/web-01/rp-2/disk0.qcow2", Format: kinds.QCOW2}, {Path: "/srv/repo/acme/web-01/rp-1/disk0.raw", Format: kinds.Raw}}
	kvm := tcgHost()
	kvm.Accelerator = "kvm"
	tests := []struct {
		file string
		in   Input
		host HostFacts
	}{
		{"linux-bios-tcg.xml", linuxInput(), tcgHost()},
		{"windows-uefi-kvm-bridged.xml", uefiWindows, kvm},
		{"linux-incremental-isolated.xml", incremental, tcgHost()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := Build(&Context{In: tt.in, Host: tt.host})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/vmspec -update to create it)", err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(got) {
				t.Fatalf("%s differs from the golden file (run with -update after checking):\n%s", tt.file, got)
			}
			// libvirt's own schema accepts it.
			validator, err := exec.LookPath("virt-xml-validate")
			if err != nil {
				t.Fatal("virt-xml-validate is required (make test installs libvirt-clients): ", err)
			}
			if out, err := exec.Command(validator, path, "domain").CombinedOutput(); err != nil {
				t.Fatalf("libvirt's schema refuses %s: %v\n%s", tt.file, err, out)
			}
		})
	}
}
