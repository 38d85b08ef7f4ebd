package agent

import (
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kinds"
)

// Bridge is a host bridge the operator offers to BRIDGED restores, and to
// which tenants.
type Bridge struct {
	Name    string
	Tenants []string
	// All offers it to every tenant.
	All bool
}

// ParseBridge reads --bridge NAME=TENANT[,TENANT…] or NAME=* (every tenant).
func ParseBridge(s string) (Bridge, error) {
	name, tenants, ok := strings.Cut(s, "=")
	if !ok || !kinds.ValidBridgeName(name) || tenants == "" {
		return Bridge{}, fmt.Errorf("--bridge %q: want NAME=TENANT[,TENANT…] or NAME=* (NAME a host bridge)", s)
	}
	b := Bridge{Name: name}
	if tenants == "*" {
		b.All = true
		return b, nil
	}
	for _, t := range strings.Split(tenants, ",") {
		if !kinds.IsDNSLabel(t) {
			return Bridge{}, fmt.Errorf("--bridge %q: %q is not a tenant id", s, t)
		}
		b.Tenants = append(b.Tenants, t)
	}
	return b, nil
}

// hostBridges is the bridges as the control plane hears of them.
func hostBridges(bs []Bridge) []*restorev1.HostBridge {
	out := make([]*restorev1.HostBridge, 0, len(bs))
	for _, b := range bs {
		out = append(out, &restorev1.HostBridge{Name: b.Name, Tenants: b.Tenants, AllTenants: b.All})
	}
	return out
}
