package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/diskfree"
	"github.com/restored/restored/internal/version"
)

// diskEvery is how often the agent measures the room its work dir offers
// and tells the cluster when it moved.
var diskEvery = 30 * time.Second

// registration is what the agent registers its host with: its size less
// the reserves, and what it can do.
func (a *Agent) registration(ctx context.Context, p *parts) (*restorev1.RegisterRequest, error) {
	nctx, ncancel := context.WithTimeout(ctx, 30*time.Second)
	size, err := p.hv.Size(nctx)
	ncancel()
	if err != nil {
		return nil, fmt.Errorf("the host's size: %w", err)
	}
	disk, err := a.diskOffer()
	if err != nil {
		return nil, err
	}
	return &restorev1.RegisterRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID, AgentVersion: version.Version, Hypervisors: []string{p.hv.Kind().String()},
		Accelerator: p.accelerator, AcceleratorNote: p.note, Bridges: hostBridges(a.cfg.Bridges), Capabilities: p.hv.Capabilities().Wire(),
		Capacity: &restorev1.Capacity{Vcpus: size.CPUs - a.cfg.ReserveVCPUs, MemoryMib: size.MemoryMiB - a.cfg.ReserveMemoryMiB, DiskMib: disk},
	}, nil
}

// diskOffer is the room, in MiB, the work dir offers restores' overlays:
// the free space of its filesystem plus what the restores' files in it
// take now (each placed restore counts against it with its whole growth
// limit), less --reserve-disk-mib; at least 1 MiB, since 0 would mean "not
// reported".
func (a *Agent) diskOffer() (int64, error) {
	free, err := diskfree.Bytes(a.cfg.WorkDir)
	if err != nil {
		return 0, err
	}
	used, _ := diskfree.DirBytes(filepath.Join(a.cfg.WorkDir, "restores")) // what it could read
	return max(int64((free+used)>>20)-a.cfg.ReserveDiskMiB, 1), nil
}

// diskReports registers the host again whenever the room its work dir
// offers moved by more than a tenth (or 1 GiB) from what the cluster was
// told: other users of the filesystem grow and shrink too.
func (a *Agent) diskReports(ctx context.Context, client restorev1.AgentServiceClient, p *parts, told int64) {
	t := time.NewTicker(diskEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := a.diskOffer()
		if err != nil || !movedFrom(told, now) {
			continue
		}
		req, err := a.registration(ctx, p)
		if err != nil {
			a.log.Warn("disk report", "err", err)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, registerTimeout)
		_, err = client.Register(rctx, req)
		cancel()
		if err != nil {
			a.log.Warn("disk report", "err", err)
			continue
		}
		a.log.Info("the work dir's room for overlays moved", "was_mib", told, "now_mib", req.Capacity.DiskMib)
		told = req.Capacity.DiskMib
	}
}

// movedFrom says whether now differs from told by more than a tenth of it
// or 1 GiB, whichever is more.
func movedFrom(told, now int64) bool {
	d := now - told
	if d < 0 {
		d = -d
	}
	return d > max(told/10, 1024)
}
