package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	tunnelpkg "github.com/restored/restored/internal/tunnel"
	"github.com/restored/restored/internal/version"
)

// imageLimit bounds making an IMAGE restore's files: whole disks are
// converted, with progress.
const imageLimit = 24 * time.Hour

// maxConversions is how many disks a host converts at once; the others
// wait PREPARING.
const maxConversions = 2

// startImage makes an IMAGE restore's files: each disk converted, with
// progress; RUNNING lists the files. Any failure leaves nothing behind and
// reports FAILED with the reason.
func (p *restores) startImage(ctx context.Context, r *restorev1.Restore) {
	p.report(ctx, r.Id, lifecycle.Preparing, "converting the disks", nil)
	im, ok := p.hv.(hypervisor.Imager)
	format, known := kinds.ImageFormatFromAPI(r.GetImageOptions().GetFormat())
	switch {
	case p.caps.Need(hypervisor.Images, "this host") != nil || !ok:
		p.report(ctx, r.Id, lifecycle.Failed, fmt.Sprintf("host %s cannot make image files: its hypervisor lacks the images capability", p.hostID), nil)
		return
	case !known:
		p.report(ctx, r.Id, lifecycle.Failed, fmt.Sprintf("image format %s is not one this agent makes", r.GetImageOptions().GetFormat()), nil)
		return
	}
	if p.conversions != nil {
		select {
		case p.conversions <- struct{}{}:
		default:
			p.report(ctx, r.Id, lifecycle.Preparing, fmt.Sprintf("waiting: this host converts %d recovery points at a time", maxConversions), nil)
			select {
			case p.conversions <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		defer func() { <-p.conversions }()
	}
	spec, err := p.spec(r)
	var files []hypervisor.ImageFile
	if err == nil {
		g := p.progressOf(r.Id)
		spec.Progress = func(pr hypervisor.Progress) { g.Progress(ctx, pr) }
		ictx, cancel := context.WithTimeout(ctx, imageLimit)
		files, err = im.Image(ictx, spec, format)
		cancel()
	}
	if err != nil {
		p.fail(ctx, r.Id, "image", err)
		return
	}
	p.reportImage(ctx, r, format, files)
}

// reportImage reports an IMAGE restore RUNNING with its files.
func (p *restores) reportImage(ctx context.Context, r *restorev1.Restore, format kinds.ImageFormat, files []hypervisor.ImageFile) {
	out := &restorev1.RestoreImage{Format: format.API()}
	var total int64
	for _, f := range files {
		out.Files = append(out.Files, &restorev1.ImageFile{Disk: f.Disk, FileName: f.Name, SizeBytes: f.Size, Sha256: f.SHA256})
		total += f.Size
	}
	req := &restorev1.ReportRestoreStatusRequest{ProtocolVersion: version.AgentProtocol, HostId: p.hostID, RestoreId: r.Id,
		State: lifecycle.Running, StateReason: clampReason(fmt.Sprintf("%d %s file(s), %d bytes, ready to download: ask for a link (POST /v1/restores/%s:download)", len(files), format, total, r.Id)),
		Image: out}
	retry{attempts: 5, step: time.Second}.do(ctx, func() error { return p.rep.reportRestore(ctx, req) })
}

// adoptImage reports the files of an IMAGE restore the agent finished
// before the control plane heard of it (the agent restarted meanwhile);
// when any is missing they are made again.
func (p *restores) adoptImage(ctx context.Context, r *restorev1.Restore) {
	im, ok := p.hv.(hypervisor.Imager)
	format, known := kinds.ImageFormatFromAPI(r.GetImageOptions().GetFormat())
	spec, err := p.spec(r)
	if !ok || !known || err != nil {
		p.startImage(ctx, r)
		return
	}
	var files []hypervisor.ImageFile
	for _, d := range spec.Disks {
		f, ok := im.ImageFile(r.Id, d.Name)
		if _, err := os.Stat(f.Path); !ok || err != nil {
			p.startImage(ctx, r)
			return
		}
		files = append(files, f)
	}
	p.log.Info("adopting an IMAGE restore whose files were made before a restart", "restore", r.Id)
	p.reportImage(ctx, r, format, files)
}

// serveImage sends bytes of an IMAGE restore's file: from open.Offset,
// open.Length of them (0: to the end).
func (t *tunnel) serveImage(open *restorev1.TunnelOpen, c *tunnelpkg.Channel) {
	var file hypervisor.ImageFile
	ok := false
	if t.images != nil {
		file, ok = t.images.ImageFile(open.RestoreId, open.Disk)
	}
	if !ok {
		_ = c.CloseWith(fmt.Sprintf("restore %s has no image file of disk %q on host %s", open.RestoreId, open.Disk, t.hostID), true)
		return
	}
	f, err := os.Open(file.Path)
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("image file of restore %s: %v", open.RestoreId, err), true)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		_ = c.CloseWith(fmt.Sprintf("image file of restore %s: %v", open.RestoreId, err), true)
		return
	}
	if open.Offset < 0 || open.Length < 0 || open.Offset > st.Size() {
		_ = c.CloseWith(fmt.Sprintf("range %d+%d is outside the file's %d bytes", open.Offset, open.Length, st.Size()), false)
		return
	}
	n := st.Size() - open.Offset
	if open.Length > 0 {
		n = min(n, open.Length)
	}
	if _, err := io.CopyBuffer(c, io.NewSectionReader(f, open.Offset, n), make([]byte, 256<<10)); err != nil {
		t.log.Warn("sending an image file ended early", "restore", open.RestoreId, "err", err)
		_ = c.CloseWith("the host could not send the whole range: "+err.Error(), false)
		return
	}
	_ = c.Close()
}
