package kinds

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// Hypervisor is what runs a host's guests.
type Hypervisor uint8

// The hypervisors.
const (
	KVM Hypervisor = iota + 1
	VMware
	HyperV
)

var hypervisorNames = names[Hypervisor]{kind: "hypervisor", names: []string{"", "kvm", "vmware", "hyperv"}}

// String is the hypervisor's name in flags and host facts.
func (h Hypervisor) String() string { return hypervisorNames.name(h) }

// Valid says whether h is one of the hypervisors.
func (h Hypervisor) Valid() bool { return hypervisorNames.valid(h) }

// ParseHypervisor reads "kvm", "vmware" or "hyperv".
func ParseHypervisor(s string) (Hypervisor, error) { return hypervisorNames.parse(s) }

// MarshalText writes the hypervisor's name.
func (h Hypervisor) MarshalText() ([]byte, error) { return hypervisorNames.marshal(h) }

// UnmarshalText reads a hypervisor's name.
func (h *Hypervisor) UnmarshalText(b []byte) (err error) {
	*h, err = ParseHypervisor(string(b))
	return err
}

// HypervisorFromAPI converts the API's hypervisor; ok is false for
// unspecified.
func HypervisorFromAPI(v restorev1.Hypervisor) (Hypervisor, bool) {
	switch v {
	case restorev1.Hypervisor_HYPERVISOR_KVM:
		return KVM, true
	case restorev1.Hypervisor_HYPERVISOR_VMWARE:
		return VMware, true
	case restorev1.Hypervisor_HYPERVISOR_HYPERV:
		return HyperV, true
	}
	return 0, false
}

// API is the hypervisor as the API says it.
func (h Hypervisor) API() restorev1.Hypervisor {
	switch h {
	case KVM:
		return restorev1.Hypervisor_HYPERVISOR_KVM
	case VMware:
		return restorev1.Hypervisor_HYPERVISOR_VMWARE
	case HyperV:
		return restorev1.Hypervisor_HYPERVISOR_HYPERV
	}
	return restorev1.Hypervisor_HYPERVISOR_UNSPECIFIED
}
