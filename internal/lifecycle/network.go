package lifecycle

import (
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// BridgeOffered says whether host h offers bridge to tenant's restores
// (its agent's --bridge flags): the only bridges a BRIDGED restore may use.
func BridgeOffered(h *restorev1.Host, bridge, tenant string) bool {
	for _, b := range h.GetBridges() {
		if b.Name == bridge && (b.AllTenants || slices.Contains(b.Tenants, tenant)) {
			return true
		}
	}
	return false
}

// Lab is the isolated lab a restore belongs to ("" when none): its
// tenant's lab name, so two tenants' labs of one name never meet.
func Lab(x *restorev1.Restore) string {
	if n := x.GetNetwork(); n.GetKind() == restorev1.NetworkKind_NETWORK_KIND_ISOLATED && n.GetLab() != "" {
		return x.Tenant + "/" + n.Lab
	}
	return ""
}

// InLab says whether a restore occupies its lab's host: it is placed and
// not yet ended.
func InLab(x *restorev1.Restore) bool { return x.HostId != "" && !Terminal(x.State) }
