package kinds

import restorev1 "github.com/restored/restored/api/gen/restore/v1"

// Network is how a restored VM is connected.
type Network uint8

// The network modes.
const (
	// NoNetwork: the VM has no network interface.
	NoNetwork Network = iota + 1
	// Isolated: a bridge of its own with no host address and no route out.
	Isolated
	// Bridged: an existing host bridge.
	Bridged
)

var networkNames = names[Network]{kind: "network", names: []string{"", "none", "isolated", "bridged"}}

func (n Network) String() string { return networkNames.name(n) }

// Valid says whether n is one of the modes.
func (n Network) Valid() bool { return networkNames.valid(n) }

// NetworkFromAPI converts the API's network kind (unspecified is none).
func NetworkFromAPI(v restorev1.NetworkKind) Network {
	switch v {
	case restorev1.NetworkKind_NETWORK_KIND_ISOLATED:
		return Isolated
	case restorev1.NetworkKind_NETWORK_KIND_BRIDGED:
		return Bridged
	}
	return NoNetwork
}

// API is the mode as the API says it.
func (n Network) API() restorev1.NetworkKind {
	switch n {
	case NoNetwork:
		return restorev1.NetworkKind_NETWORK_KIND_NONE
	case Isolated:
		return restorev1.NetworkKind_NETWORK_KIND_ISOLATED
	case Bridged:
		return restorev1.NetworkKind_NETWORK_KIND_BRIDGED
	}
	return restorev1.NetworkKind_NETWORK_KIND_UNSPECIFIED
}
