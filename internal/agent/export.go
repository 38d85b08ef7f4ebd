package agent

import (
	"context"
	"fmt"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/version"
)

// startExport serves an EXPORT restore: overlays on its recovery point,
// served as NBD behind the host's gate; RUNNING says where. Any failure
// leaves nothing behind and reports FAILED with the reason.
func (p *restores) startExport(ctx context.Context, r *restorev1.Restore) {
	p.report(ctx, r.Id, lifecycle.Preparing, "making the overlays of the export", nil)
	ex, ok := p.hv.(hypervisor.Exporter)
	if err := p.caps.Need(hypervisor.Exports, "this host"); err != nil || !ok {
		p.report(ctx, r.Id, lifecycle.Failed, fmt.Sprintf("host %s cannot export disks: its hypervisor lacks the exports capability", p.hostID), nil)
		return
	}
	spec, err := p.spec(r)
	var disks []hypervisor.SnapshotDisk
	if err == nil {
		g := p.progressOf(r.Id)
		spec.Progress = func(pr hypervisor.Progress) { g.Progress(ctx, pr) }
		pctx, cancel := context.WithTimeout(ctx, p.limits.prepare)
		disks, err = ex.Export(pctx, spec, r.GetExportOptions().GetReadWrite())
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		p.log.Error("export failed", "restore", r.Id, "err", err)
		if terr := p.teardown(ctx, r.Id); terr != nil {
			p.log.Error("unwinding a failed export", "restore", r.Id, "err", terr)
			return
		}
		p.report(ctx, r.Id, lifecycle.Failed, err.Error(), nil)
		return
	}
	out := &restorev1.RestoreExport{NbdCaCert: p.gateCA, ReadWrite: r.GetExportOptions().GetReadWrite()}
	for _, d := range disks {
		uri := d.URI
		if p.public != nil {
			uri = p.public(d.Export)
		}
		out.Disks = append(out.Disks, &restorev1.ExportDisk{Name: d.Name, Size: d.Size, NbdUri: uri, ExportName: d.Export})
	}
	access := "read-only"
	if out.ReadWrite {
		access = "read-write, writes kept in the overlay"
	}
	req := &restorev1.ReportRestoreStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: r.Id,
		State: lifecycle.Running, StateReason: fmt.Sprintf("%d disk(s) exported over NBD with TLS (%s): ask for credentials (POST /v1/restores/%s/credentials)", len(out.Disks), access, r.Id),
		Export: out}
	retry{attempts: 5, step: time.Second}.do(ctx, func() error { return p.rep.reportRestore(ctx, req) })
}

// exportSocket is where an EXPORT restore's exports are served, for the
// gate.
func (p *restores) exportSocket(id string) (string, bool) {
	ex, ok := p.hv.(hypervisor.Exporter)
	if !ok {
		return "", false
	}
	return ex.ExportSocket(id)
}
