package vmspec

import "testing"

func TestConfigureNetwork(t *testing.T) {
	tests := []struct {
		kind, bridge, os string
		wantNICs         int
		wantModel        string
	}{
		{NetworkNone, "", "linux", 0, ""},
		{NetworkIsolated, "rst-iso-1a2b", "linux", 1, "virtio"},
		{NetworkBridged, "br0", "windows", 1, "e1000"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.os, func(t *testing.T) {
			in := linuxInput()
			in.NetworkKind, in.Bridge, in.OS = tt.kind, tt.bridge, tt.os
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
