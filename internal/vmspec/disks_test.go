package vmspec

import (
	"testing"

	"github.com/restored/restored/internal/kinds"
)

func TestConfigureDisks(t *testing.T) {
	tests := []struct {
		name    string
		os      kinds.OSFamily
		chain   []ChainElement
		wantBus string
		wantDev string
		depth   int
	}{
		{"linux uses virtio", kinds.Linux, []ChainElement{{Path: "/r/rp1/d.raw", Format: kinds.Raw}}, "virtio", "vda", 1},
		{"windows uses SATA", kinds.Windows, []ChainElement{{Path: "/r/rp1/d.raw", Format: kinds.Raw}}, "sata", "sda", 1},
		{"unknown OS uses SATA", kinds.OtherOS, []ChainElement{{Path: "/r/rp1/d.raw", Format: kinds.Raw}}, "sata", "sda", 1},
		{"incremental chain is spelled out", kinds.Linux, []ChainElement{{Path: "/r/rp2/d.qcow2", Format: kinds.QCOW2}, {Path: "/r/rp1/d.raw", Format: kinds.Raw}}, "virtio", "vda", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := linuxInput()
			in.OS = tt.os
			in.Disks[0].Chain = tt.chain
			d := run(t, configureDisks, in, tcgHost())
			disk := d.Devices.Disks[0]
			if disk.Target.Bus != tt.wantBus || disk.Target.Dev != tt.wantDev {
				t.Fatalf("target %+v", disk.Target)
			}
			if disk.Driver.Type != "qcow2" || disk.Source.File.File != in.Disks[0].Overlay || disk.Boot == nil {
				t.Fatalf("overlay not attached as the qcow2 boot disk: %+v", disk)
			}
			bs := disk.BackingStore
			for i := 0; i < tt.depth; i++ {
				if bs == nil || bs.Source == nil {
					t.Fatalf("chain element %d missing", i)
				}
				if bs.Format.Type != tt.chain[i].Format.String() || bs.Source.File.File != tt.chain[i].Path {
					t.Fatalf("chain element %d: %s %s", i, bs.Format.Type, bs.Source.File.File)
				}
				if sl := bs.Source.File.SecLabel; len(sl) != 1 || sl[0].Model != "dac" || sl[0].Relabel != "no" {
					t.Fatalf("chain element %d would be relabelled: %+v", i, sl)
				}
				bs = bs.BackingStore
			}
			if bs == nil || bs.Source != nil {
				t.Fatal("the chain must end with an empty backingStore so QEMU looks no further")
			}
		})
	}
}
