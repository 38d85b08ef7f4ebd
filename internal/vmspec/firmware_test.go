package vmspec

import (
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

func TestConfigureFirmware(t *testing.T) {
	bios := run(t, configureFirmware, linuxInput(), tcgHost())
	if bios.OS.Loader != nil || bios.OS.NVRam != nil || bios.OS.Type.Machine != "q35" {
		t.Fatalf("bios: %+v", bios.OS)
	}
	in := linuxInput()
	in.Firmware, in.NVRAM = kinds.UEFI, "/work/r/nvram.fd"
	uefi := run(t, configureFirmware, in, tcgHost())
	if uefi.OS.Loader.Path != tcgHost().OVMFCode || uefi.OS.Loader.Readonly != "yes" || uefi.OS.NVRam.NVRam != in.NVRAM || uefi.OS.NVRam.Template != tcgHost().OVMFVars {
		t.Fatalf("uefi: %+v %+v", uefi.OS.Loader, uefi.OS.NVRam)
	}
	err := configureFirmware(&Context{In: in, Host: HostFacts{Accelerator: "tcg"}}, bios)
	if err == nil || !strings.Contains(err.Error(), "ovmf") {
		t.Fatalf("uefi on a host without OVMF: %v", err)
	}
}

func TestConfigureIdentityFollowsTheAccelerator(t *testing.T) {
	for accel, want := range map[string]string{"kvm": "kvm", "tcg": "qemu"} {
		h := tcgHost()
		h.Accelerator = accel
		d := run(t, configureIdentity, linuxInput(), h)
		if d.Type != want || d.Name != "restored-"+linuxInput().RestoreID {
			t.Fatalf("%s: type %s name %s", accel, d.Type, d.Name)
		}
		r := run(t, configureResources, linuxInput(), h)
		if (accel == "kvm") != (r.CPU != nil && r.CPU.Mode == "host-passthrough") {
			t.Fatalf("%s: cpu %+v", accel, r.CPU)
		}
	}
}
