package vmspec

import (
	"testing"

	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// Domain building from arbitrary restores: whatever the fields (ids,
// tenant, sizes, enums, bridge and path names), Build refuses or gives a
// domain whose XML reads back the same — no field can add an element, a
// disk or a device, nor rename the domain.
func FuzzBuildDomain(f *testing.F) {
	f.Add("019a6c2e-7f3c-7a1b-9c4d-5e6f708192a3", "acme", 1, int64(256), uint8(1), uint8(1), uint8(1), "", "/srv/repo/acme/web/rp-1/disk0.raw", uint8(1))
	f.Add("r-1", "acme", 4, int64(4096), uint8(2), uint8(2), uint8(3), "br-prod", "/srv/x.qcow2", uint8(2))
	f.Add("r-2", `a"/><disk>`, 64, int64(1<<40), uint8(2), uint8(3), uint8(2), `br'/><interface type="bridge"><source bridge="x`, "/a/b/../../etc/shadow", uint8(1))
	f.Fuzz(func(t *testing.T, id, tenant string, vcpus int, mem int64, fw, osf, netw uint8, bridge, chainPath string, format uint8) {
		in := linuxInput()
		in.RestoreID, in.Tenant, in.VCPUs, in.MemoryMiB = id, tenant, vcpus, mem
		in.Firmware, in.OS, in.Network, in.Bridge = kinds.Firmware(fw), kinds.OSFamily(osf), kinds.Network(netw), bridge
		in.Disks[0].Chain[0] = ChainElement{Path: chainPath, Format: kinds.DiskFormat(format)}
		in.NVRAM = "/var/lib/restored-agent/work/x/nvram.fd"
		d, err := Build(&Context{In: in, Host: tcgHost()})
		if err != nil {
			return
		}
		xml, err := d.Marshal()
		if err != nil {
			t.Fatalf("a built domain does not marshal: %v", err)
		}
		var back libvirtxml.Domain
		if err := back.Unmarshal(xml); err != nil {
			t.Fatalf("the domain's XML does not read back: %v\n%s", err, xml)
		}
		if back.Name != DomainName(id) {
			t.Fatalf("domain name %q, want %q", back.Name, DomainName(id))
		}
		if back.Devices == nil || len(back.Devices.Disks) != len(d.Devices.Disks) || len(back.Devices.Interfaces) != len(d.Devices.Interfaces) {
			t.Fatalf("the XML has other devices than the domain built:\n%s", xml)
		}
		want := 0
		if in.Network != kinds.NoNetwork {
			want = 1
		}
		if len(back.Devices.Interfaces) != want {
			t.Fatalf("%d interfaces for network %s", len(back.Devices.Interfaces), in.Network)
		}
		if disk := back.Devices.Disks[0]; disk.BackingStore == nil || disk.BackingStore.Source == nil || disk.BackingStore.Source.File == nil || disk.BackingStore.Source.File.File != chainPath {
			t.Fatalf("the disk's backing file is not %q:\n%s", chainPath, xml)
		}
		if want == 1 {
			src := back.Devices.Interfaces[0].Source
			if src == nil || src.Bridge == nil || src.Bridge.Bridge != bridge {
				t.Fatalf("the interface's bridge is not %q:\n%s", bridge, xml)
			}
		}
	})
}
