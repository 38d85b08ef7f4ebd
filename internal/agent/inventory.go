package agent

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/version"
)

// reportInventory tells the control plane which domains the host runs
// (never its restore VMs): the only source of which guests exist.
func (a *Agent) reportInventory(ctx context.Context, client restorev1.AgentServiceClient, hv hypervisor.Snapshotter) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ds, err := hv.Inventory(ictx)
	if err != nil {
		return err
	}
	req := &restorev1.ReportInventoryRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID}
	for _, d := range ds {
		req.Domains = append(req.Domains, &restorev1.HostDomain{Uuid: d.UUID, Name: d.Name, Moref: d.Moref, Running: d.Running, Disks: d.Disks, OwnerTenant: d.OwnerTenant})
	}
	resp, err := client.ReportInventory(ictx, req)
	if err == nil && resp.Changed {
		a.log.Info("the host's domains changed", "domains", len(ds))
	}
	return err
}
