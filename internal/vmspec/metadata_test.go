package vmspec

import (
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

func TestMetadataRoundTripsThroughLibvirtsRewriting(t *testing.T) {
	d := run(t, configureMetadata, linuxInput(), tcgHost())
	m, ok := ParseMetadata(d)
	if !ok || m.RestoreID != linuxInput().RestoreID || m.Tenant != "acme" || m.HostID != "kvm-01" || m.ExpireAt != "2026-11-26T14:00:00Z" {
		t.Fatalf("got %+v %v", m, ok)
	}
	// libvirt hands metadata back with its own prefix.
	rewritten := &libvirtxml.Domain{Metadata: &libvirtxml.DomainMetadata{XML: `<restored:restore xmlns:restored="` + MetadataNamespace +
		`"><restored:id>r-1</restored:id><restored:tenant>acme</restored:tenant><restored:expire>2026-11-26T14:00:00Z</restored:expire></restored:restore>`}}
	if m, ok := ParseMetadata(rewritten); !ok || m.RestoreID != "r-1" {
		t.Fatalf("prefixed metadata: %+v %v", m, ok)
	}
	for _, foreign := range []string{"", `<other xmlns="urn:x"><id>r-1</id></other>`, `<restore><id>no-namespace</id></restore>`} {
		if _, ok := ParseMetadata(&libvirtxml.Domain{Metadata: &libvirtxml.DomainMetadata{XML: foreign}}); ok {
			t.Errorf("a domain that is not Restored's was claimed: %q", foreign)
		}
	}
}

func TestValidateRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"memory below 96 MiB", func(in *Input) { in.MemoryMiB = 64 }, "96 MiB"},
		{"restore id with a slash", func(in *Input) { in.RestoreID = "../etc" }, "cannot name a domain"},
		{"no disks", func(in *Input) { in.Disks = nil }, "at least one disk"},
		{"relative overlay", func(in *Input) { in.Disks[0].Overlay = "disk.qcow2" }, "absolute overlay"},
		{"chain format probed", func(in *Input) { in.Disks[0].Chain[0].Format = 0 }, "raw or qcow2"},
		{"bridged without a bridge", func(in *Input) { in.Network = kinds.Bridged }, "needs a bridge"},
		{"uefi without nvram", func(in *Input) { in.Firmware = kinds.UEFI }, "NVRAM"},
		{"no vnc password", func(in *Input) { in.VNCPassword = "" }, "VNC password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := linuxInput()
			tt.change(&in)
			_, err := Build(&Context{In: in, Host: tcgHost()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// A restore's QEMU runs as the uid confine chose: a static DAC label, and
// only a well-formed one.
func TestTheDomainRunsAsTheRestoresOwnUID(t *testing.T) {
	in := linuxInput()
	in.DACLabel = "+2000000042:+107"
	d, err := Build(&Context{In: in, Host: tcgHost()})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.SecLabel) != 1 || d.SecLabel[0].Type != "static" || d.SecLabel[0].Model != "dac" || d.SecLabel[0].Label != in.DACLabel || d.SecLabel[0].Relabel != "yes" {
		t.Fatalf("seclabel %+v", d.SecLabel)
	}
	for _, bad := range []string{"+0:+0", "root:root", "+1:+2</label>", "+2000000042"} {
		in.DACLabel = bad
		if _, err := Build(&Context{In: in, Host: tcgHost()}); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
}
