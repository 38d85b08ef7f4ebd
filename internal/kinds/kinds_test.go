package kinds

import (
	"encoding/json"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

type textKind interface {
	comparable
	String() string
	Valid() bool
	MarshalText() ([]byte, error)
}

func roundTrip[T textKind](t *testing.T, values []T, parse func(string) (T, error)) {
	t.Helper()
	for _, v := range values {
		if !v.Valid() {
			t.Errorf("%v is not valid", v)
		}
		got, err := parse(v.String())
		if err != nil || got != v {
			t.Errorf("parse(%q) = %v, %v; want %v", v.String(), got, err, v)
		}
		b, err := json.Marshal(struct{ V T }{v})
		if err != nil || !strings.Contains(string(b), `"`+v.String()+`"`) {
			t.Errorf("json of %v: %s, %v", v, b, err)
		}
	}
	var zero T
	if zero.Valid() {
		t.Error("the zero value is valid")
	}
	if _, err := zero.MarshalText(); err == nil {
		t.Error("the zero value marshals")
	}
	if _, err := parse("nonsense"); err == nil || !strings.Contains(err.Error(), `"nonsense" must be `) {
		t.Errorf("parse(nonsense): %v", err)
	}
}

func TestNamesRoundTrip(t *testing.T) {
	roundTrip(t, []Firmware{BIOS, UEFI}, ParseFirmware)
	roundTrip(t, []DiskFormat{Raw, QCOW2}, ParseDiskFormat)
	roundTrip(t, []OSFamily{Linux, Windows, OtherOS}, ParseOSFamily)
	roundTrip(t, []Hypervisor{KVM, VMware, HyperV}, ParseHypervisor)
}

func TestManifestFieldsDecodeOrSayWhatIsAllowed(t *testing.T) {
	var m struct {
		Firmware Firmware   `json:"firmware"`
		Format   DiskFormat `json:"format"`
		OS       OSFamily   `json:"os"`
	}
	if err := json.Unmarshal([]byte(`{"firmware":"uefi","format":"qcow2","os":"windows"}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.Firmware != UEFI || m.Format != QCOW2 || m.OS != Windows {
		t.Fatalf("decoded %+v", m)
	}
	err := json.Unmarshal([]byte(`{"format":"vmdk"}`), &m)
	if err == nil || !strings.Contains(err.Error(), `format "vmdk" must be raw or qcow2`) {
		t.Fatalf("vmdk: %v", err)
	}
}

// Every value of the API's enums converts, and back to itself.
func TestEveryAPIValueConverts(t *testing.T) {
	fw := restorev1.Firmware(0).Descriptor().Values()
	for i := 0; i < fw.Len(); i++ {
		v := restorev1.Firmware(fw.Get(i).Number())
		f, ok := FirmwareFromAPI(v)
		automatic := v == restorev1.Firmware_FIRMWARE_AUTO || v == restorev1.Firmware_FIRMWARE_UNSPECIFIED
		if ok == automatic || (ok && f.API() != v) {
			t.Errorf("firmware %s -> %v, %v", v, f, ok)
		}
	}
	nk := restorev1.NetworkKind(0).Descriptor().Values()
	for i := 1; i < nk.Len(); i++ {
		v := restorev1.NetworkKind(nk.Get(i).Number())
		if n := NetworkFromAPI(v); !n.Valid() || n.API() != v {
			t.Errorf("network %s -> %v -> %s", v, n, n.API())
		}
	}
	hv := restorev1.Hypervisor(0).Descriptor().Values()
	for i := 1; i < hv.Len(); i++ {
		v := restorev1.Hypervisor(hv.Get(i).Number())
		if h, ok := HypervisorFromAPI(v); !ok || h.API() != v {
			t.Errorf("hypervisor %s -> %v", v, h)
		}
	}
}
