package kinds

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// Firmware is how a machine boots.
type Firmware uint8

// The firmwares.
const (
	BIOS Firmware = iota + 1
	UEFI
)

var firmwareNames = names[Firmware]{kind: "firmware", names: []string{"", "bios", "uefi"}}

func (f Firmware) String() string { return firmwareNames.name(f) }

// Valid says whether f is one of the firmwares.
func (f Firmware) Valid() bool { return firmwareNames.valid(f) }

// ParseFirmware reads "bios" or "uefi".
func ParseFirmware(s string) (Firmware, error) { return firmwareNames.parse(s) }

// MarshalText writes the firmware's name (manifests).
func (f Firmware) MarshalText() ([]byte, error) { return firmwareNames.marshal(f) }

// UnmarshalText reads a firmware's name.
func (f *Firmware) UnmarshalText(b []byte) (err error) {
	*f, err = ParseFirmware(string(b))
	return err
}

// FirmwareFromAPI converts the API's firmware; ok is false for AUTO (and
// unspecified): the recovery point's own firmware applies.
func FirmwareFromAPI(v restorev1.Firmware) (f Firmware, ok bool) {
	switch v {
	case restorev1.Firmware_FIRMWARE_BIOS:
		return BIOS, true
	case restorev1.Firmware_FIRMWARE_UEFI:
		return UEFI, true
	}
	return 0, false
}

// API is the firmware as the API says it.
func (f Firmware) API() restorev1.Firmware {
	switch f {
	case BIOS:
		return restorev1.Firmware_FIRMWARE_BIOS
	case UEFI:
		return restorev1.Firmware_FIRMWARE_UEFI
	}
	return restorev1.Firmware_FIRMWARE_UNSPECIFIED
}
