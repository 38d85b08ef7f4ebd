package vmspec

import (
	"testing"

	"github.com/restored/restored/internal/kinds"
)

func TestConfigureNetwork(t *testing.T) {
	tests := []struct {
		kind      kinds.Network
		bridge    string
		os        kinds.OSFamily
		wantNICs  int
		wantModel string
	}{
		{kinds.NoNetwork, "", kinds.Linux, 0, ""},
		{kinds.Isolated, "rst-iso-1a2b", kinds.Linux, 1, "virtio"},
		{kinds.Bridged, "br0", kinds.Windows, 1, "e1000"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String()+"/"+tt.os.String(), func(t *testing.T) {
			in := linuxInput()
			in.Network, in.Bridge, in.OS = tt.kind, tt.bridge, tt.os
			d := run(t, configureNetwork, in, tcgHost())
			if len(d.Devices.Interfaces) != tt.wantNICs {
				t.Fatalf("%d NICs", len(d.Devices.Interfaces))
			}
			if tt.wantNICs == 1 {
				nic := d.Devices.Interfaces[0]
				if nic.Source.Bridge.Bridge != tt.bridge || nic.Model.Type != tt.wantModel {
					t.Fatalf("nic %+v %+v", nic.Source.Bridge, nic.Model)
				}
			}
		})
	}
}
