package vmspec

import (
	"testing"
	"time"

	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

func linuxInput() Input {
	return Input{
		RestoreID: "019a6c2e-7f3c-7a1b-9c4d-5e6f708192a3",
		Tenant:    "acme",
		HostID:    "kvm-01",
		ExpireAt:  time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC),
		VCPUs:     1,
		MemoryMiB: 256,
		Firmware:  kinds.BIOS,
		OS:        kinds.Linux,
		Disks: []DiskInput{{
			Name:    "disk0",
			Overlay: "/var/lib/restored-agent/work/019a6c2e/disk0.qcow2",
			Chain:   []ChainElement{{Path: "/srv/repo/acme/web-01/rp-1/disk0.raw", Format: kinds.Raw}},
		}},
		Network:     kinds.NoNetwork,
		SerialLog:   "/var/lib/restored-agent/work/019a6c2e/serial.log",
		VNCPassword: "s3cret-vnc",
	}
}

func tcgHost() HostFacts {
	return HostFacts{Accelerator: "tcg", OVMFCode: "/usr/share/OVMF/OVMF_CODE_4M.fd", OVMFVars: "/usr/share/OVMF/OVMF_VARS_4M.fd"}
}

// run applies one configurator to a domain that already has a device list.
func run(t *testing.T, cfg Configurator, in Input, host HostFacts) *libvirtxml.Domain {
	t.Helper()
	d := &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{}}
	if err := cfg(&Context{In: in, Host: host}, d); err != nil {
		t.Fatal(err)
	}
	return d
}
