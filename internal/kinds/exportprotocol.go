package kinds

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// ExportProtocol is how an EXPORT restore's disks are served.
type ExportProtocol uint8

// The export protocols.
const (
	NBD ExportProtocol = iota + 1
	ISCSI
)

var exportProtocolNames = names[ExportProtocol]{kind: "export protocol", names: []string{"", "nbd", "iscsi"}}

// String is the protocol's name ("iscsi").
func (p ExportProtocol) String() string { return exportProtocolNames.name(p) }

// ExportProtocolFromAPI converts the API's protocol (unspecified is NBD);
// ok is false for an unknown value.
func ExportProtocolFromAPI(v restorev1.ExportProtocol) (ExportProtocol, bool) {
	switch v {
	case restorev1.ExportProtocol_EXPORT_PROTOCOL_UNSPECIFIED, restorev1.ExportProtocol_EXPORT_PROTOCOL_NBD:
		return NBD, true
	case restorev1.ExportProtocol_EXPORT_PROTOCOL_ISCSI:
		return ISCSI, true
	}
	return 0, false
}

// API is the protocol as the API says it.
func (p ExportProtocol) API() restorev1.ExportProtocol {
	if p == ISCSI {
		return restorev1.ExportProtocol_EXPORT_PROTOCOL_ISCSI
	}
	return restorev1.ExportProtocol_EXPORT_PROTOCOL_NBD
}
