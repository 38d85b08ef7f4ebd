package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	tunnelpkg "github.com/restored/restored/internal/tunnel"
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
	protocol, known := kinds.ExportProtocolFromAPI(r.GetExportOptions().GetProtocol())
	if !known {
		p.report(ctx, r.Id, lifecycle.Failed, fmt.Sprintf("export protocol %s is not one this agent serves", r.GetExportOptions().GetProtocol()), nil)
		return
	}
	opts := hypervisor.ExportOptions{ReadWrite: r.GetExportOptions().GetReadWrite(), Protocol: protocol}
	spec, err := p.spec(r)
	var got hypervisor.Exported
	if err == nil {
		g := p.progressOf(r.Id)
		spec.Progress = func(pr hypervisor.Progress) { g.Progress(ctx, pr) }
		pctx, cancel := context.WithTimeout(ctx, p.limits.prepare)
		got, err = ex.Export(pctx, spec, opts)
		cancel()
	}
	if err != nil {
		p.fail(ctx, r.Id, "export", err)
		return
	}
	out := &restorev1.RestoreExport{ReadWrite: opts.ReadWrite, Protocol: protocol.API(), ChapUser: got.CHAPUser}
	if protocol == kinds.NBD {
		out.NbdCaCert = p.gateCA
	}
	for _, d := range got.Disks {
		e := &restorev1.ExportDisk{Name: d.Name, Size: d.Size}
		switch protocol {
		case kinds.ISCSI:
			e.IscsiPortal, e.IscsiIqn, e.IscsiLun = got.Portal, got.IQN, int32(d.LUN)
			e.IscsiUri = fmt.Sprintf("iscsi://%s/%s/%d", got.Portal, got.IQN, d.LUN)
		default:
			e.NbdUri, e.ExportName = d.URI, d.Export
			if p.public != nil {
				e.NbdUri = p.public(d.Export)
			}
		}
		out.Disks = append(out.Disks, e)
	}
	access := "read-only"
	if out.ReadWrite {
		access = "read-write, writes kept in the overlay"
	}
	how := "over NBD with TLS"
	if protocol == kinds.ISCSI {
		how = "over iSCSI with CHAP at " + got.Portal
	}
	req := &restorev1.ReportRestoreStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: r.Id,
		State: lifecycle.Running, StateReason: clampReason(fmt.Sprintf("%d disk(s) exported %s (%s): ask for credentials (POST /v1/restores/%s/credentials)", len(out.Disks), how, access, r.Id)),
		Export: out}
	retry{attempts: 5, step: time.Second}.do(ctx, func() error {
		err := p.rep.reportRestore(ctx, req)
		if err == nil {
			p.served.add(r.Id) // a later assignment still saying PREPARING was sent before it
		}
		return err
	})
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

// serveCHAP gives an iSCSI export's target a new CHAP secret and sends
// "USER SECRET" on the channel: the only copy (nothing keeps it).
func (t *tunnel) serveCHAP(ctx context.Context, id string, c *tunnelpkg.Channel) {
	if t.exporter == nil || t.caps.Need(hypervisor.Exports, "host "+t.hostID) != nil {
		_ = c.CloseWith(fmt.Sprintf("host %s serves no exports", t.hostID), false)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	user, secret, err := t.exporter.SetCHAP(sctx, id)
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("a new CHAP secret for restore %s on host %s: %v", id, t.hostID, err), errors.Is(err, hypervisor.ErrNoVM))
		return
	}
	t.log.Info("CHAP secret of an iSCSI export replaced", "restore", id, "user", user) // never the secret
	_, _ = c.Write([]byte(user + " " + secret))
	_ = c.Close()
}
