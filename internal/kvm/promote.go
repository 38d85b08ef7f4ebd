package kvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/revert"
	"github.com/restored/restored/internal/vmspec"
	"libvirt.org/go/libvirtxml"
)

// Promotion on KVM: each disk of the running domain is copied whole
// (overlay and recovery point chain flattened into one qcow2) into the
// storage pool's directory by libvirt's block copy, a transient job of the
// persistent domain; when every copy mirrors, QEMU pivots to the copies,
// which leaves it no file of the recovery point or the overlay. Then the
// domain is handed over: its persistent definition points at the copies
// (serial log and NVRAM moved beside them), Restored's metadata is
// removed (live and in the definition, so no agent lists it any more),
// the recovery point's read grants are taken back and the restore's work
// dir removed. The domain keeps its name (libvirt renames only a stopped
// domain: `virsh domrename` then).

// poolPath is a storage pool's directory (pools of type dir).
func (d *Driver) poolPath(ctx context.Context, name string) (libvirt.StoragePool, string, error) {
	pool, err := call(ctx, d, "look up pool "+name, func(l Libvirt) (libvirt.StoragePool, error) { return l.StoragePoolLookupByName(name) })
	if err != nil {
		return pool, "", fmt.Errorf("storage pool %q on this host: %w", name, err)
	}
	x, err := call(ctx, d, "read pool "+name, func(l Libvirt) (string, error) { return l.StoragePoolGetXMLDesc(pool, 0) })
	if err != nil {
		return pool, "", err
	}
	var spec libvirtxml.StoragePool
	if err := spec.Unmarshal(x); err != nil {
		return pool, "", err
	}
	if spec.Type != "dir" || spec.Target == nil || !filepath.IsAbs(spec.Target.Path) {
		return pool, "", fmt.Errorf("storage pool %q is of type %q: promotion takes a pool of type dir", name, spec.Type)
	}
	return pool, spec.Target.Path, nil
}

// domainXML reads a domain's definition (live, or inactive).
func (d *Driver) domainXML(ctx context.Context, dom libvirt.Domain, flags libvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	x, err := call(ctx, d, "read "+dom.Name, func(l Libvirt) (string, error) { return l.DomainGetXMLDesc(dom, flags) })
	if err != nil {
		return nil, err
	}
	spec := &libvirtxml.Domain{}
	return spec, spec.Unmarshal(x)
}

// blockJob is a disk's block job: whether one runs, and how far.
func (d *Driver) blockJob(ctx context.Context, dom libvirt.Domain, dev string) (found bool, cur, end uint64, err error) {
	type info struct {
		found    bool
		cur, end uint64
	}
	i, err := call(ctx, d, "block job of "+dev, func(l Libvirt) (info, error) {
		f, _, _, c, e, err := l.DomainGetBlockJobInfo(dom, dev, 0)
		return info{f == 1, c, e}, err
	})
	return i.found, i.cur, i.end, err
}

func (d *Driver) abortBlockJob(ctx context.Context, dom libvirt.Domain, dev string, pivot bool) error {
	var flags libvirt.DomainBlockJobAbortFlags
	if pivot {
		flags = libvirt.DomainBlockJobAbortPivot
	}
	_, err := call(ctx, d, "end the block job of "+dev, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainBlockJobAbort(dom, dev, flags)
	})
	return err
}

// copied is one disk being copied.
type copied struct{ dev, dest string }

// Promote implements hypervisor.Promoter.
func (h *Host) Promote(ctx context.Context, spec hypervisor.PromoteSpec) (hypervisor.Promoted, error) {
	var none hypervisor.Promoted
	name := h.domain(spec.ID)
	dom, err := h.drv.lookup(ctx, name)
	if err != nil {
		return none, fmt.Errorf("the restore's domain %s: %w", name, err)
	}
	pool, dir, err := h.drv.poolPath(ctx, spec.Pool)
	if err != nil {
		return none, err
	}
	live, err := h.drv.domainXML(ctx, dom, 0)
	if err != nil {
		return none, err
	}
	rv := revert.New()
	defer rv.Fail()
	var disks []copied
	for _, disk := range live.Devices.Disks {
		if disk.Device != "disk" || disk.Source == nil || disk.Source.File == nil || disk.Target == nil {
			continue
		}
		c := copied{dev: disk.Target.Dev, dest: filepath.Join(dir, name+"-"+disk.Target.Dev+".qcow2")}
		if found, _, _, err := h.drv.blockJob(ctx, dom, c.dev); err == nil && found {
			// A copy an earlier run of the agent began (it restarted):
			// begin again.
			if err := h.drv.abortBlockJob(ctx, dom, c.dev, false); err != nil {
				return none, fmt.Errorf("stop an earlier copy of disk %s: %w", c.dev, err)
			}
			_ = os.Remove(c.dest)
		}
		if _, err := os.Lstat(c.dest); err == nil {
			return none, fmt.Errorf("%s exists already in storage pool %s: a promotion never overwrites a file", c.dest, spec.Pool)
		}
		dest, _ := (&libvirtxml.DomainDisk{Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: c.dest}},
			Driver: &libvirtxml.DomainDiskDriver{Type: "qcow2"}}).Marshal()
		var params []libvirt.TypedParam
		if h.promoteBandwidth > 0 {
			params = append(params, libvirt.TypedParam{Field: "bandwidth", Value: *libvirt.NewTypedParamValueUllong(uint64(h.promoteBandwidth))})
		}
		if _, err := call(ctx, h.drv, "copy "+c.dev, func(l Libvirt) (struct{}, error) {
			return struct{}{}, l.DomainBlockCopy(dom, c.dev, dest, params, libvirt.DomainBlockCopyTransientJob)
		}); err != nil {
			return none, fmt.Errorf("start copying disk %s: %w", c.dev, err)
		}
		rv.Add(func() {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = h.drv.abortBlockJob(actx, dom, c.dev, false)
			_ = os.Remove(c.dest)
		})
		disks = append(disks, c)
	}
	if len(disks) == 0 {
		return none, errors.New("the domain has no disk to copy")
	}
	// Until every copy mirrors the disk, with progress.
	for {
		var done, total uint64
		ready := true
		for _, c := range disks {
			found, cur, end, err := h.drv.blockJob(ctx, dom, c.dev)
			if err != nil {
				return none, err
			}
			if !found {
				return none, fmt.Errorf("the copy of disk %s ended by itself", c.dev)
			}
			done, total = done+cur, total+end
			ready = ready && end > 0 && cur == end
		}
		if spec.Progress != nil {
			spec.Progress(hypervisor.Progress{Step: fmt.Sprintf("copying %d disk(s) to storage pool %s", len(disks), spec.Pool), Done: int64(done), Total: int64(total)})
		}
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			return none, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The pivot: from here on the copies are the disks.
	pctx := context.WithoutCancel(ctx)
	for _, c := range disks {
		if err := h.drv.abortBlockJob(pctx, dom, c.dev, true); err != nil {
			return none, fmt.Errorf("switch disk %s to its copy: %w", c.dev, err)
		}
	}
	rv.Success()
	out := hypervisor.Promoted{Domain: name}
	for _, c := range disks {
		out.Disks = append(out.Disks, c.dest)
	}
	if err := h.handOver(pctx, spec.ID, dom, dir, disks); err != nil {
		return none, fmt.Errorf("the disks were switched to %v, but handing the domain over failed: %w", out.Disks, err)
	}
	_, _ = call(pctx, h.drv, "refresh pool "+spec.Pool, func(l Libvirt) (struct{}, error) { return struct{}{}, l.StoragePoolRefresh(pool, 0) })
	return out, nil
}

// handOver makes a pivoted domain the operator's: its definition on the
// copies (serial log and NVRAM beside them), no Restored metadata, the
// recovery point's grants taken back, the restore's work dir gone.
func (h *Host) handOver(ctx context.Context, id string, dom libvirt.Domain, dir string, disks []copied) error {
	def, err := h.drv.domainXML(ctx, dom, libvirt.DomainXMLInactive)
	if err != nil {
		return err
	}
	dests := map[string]string{}
	for _, c := range disks {
		dests[c.dev] = c.dest
	}
	for i := range def.Devices.Disks {
		disk := &def.Devices.Disks[i]
		if disk.Target == nil || dests[disk.Target.Dev] == "" {
			continue
		}
		disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: dests[disk.Target.Dev]}}
		disk.BackingStore = nil
		disk.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"}
	}
	for i := range def.Devices.Serials {
		if l := def.Devices.Serials[i].Log; l != nil && strings.HasPrefix(l.File, h.restoreDir(id)) {
			l.File = filepath.Join(dir, def.Name+"-serial.log")
		}
	}
	if def.OS != nil && def.OS.NVRam != nil && strings.HasPrefix(def.OS.NVRam.NVRam, h.restoreDir(id)) {
		nvram := filepath.Join(dir, def.Name+"-VARS.fd")
		if err := copyFile(def.OS.NVRam.NVRam, nvram); err != nil {
			return fmt.Errorf("keep the NVRAM: %w", err)
		}
		def.OS.NVRam.NVRam = nvram
	}
	def.Metadata = nil
	if err := h.drv.Define(ctx, def); err != nil {
		return err
	}
	if _, err := call(ctx, h.drv, "remove the metadata of "+dom.Name, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{}, libvirt.OptString{}, libvirt.OptString{vmspec.MetadataNamespace}, libvirt.DomainAffectLive)
	}); err != nil {
		return err
	}
	if err := h.unconfine(id); err != nil {
		return err
	}
	return os.RemoveAll(h.restoreDir(id))
}

// Promoted implements hypervisor.Promoter: the restore's domain runs
// without Restored's metadata.
func (h *Host) Promoted(ctx context.Context, id string) (hypervisor.Promoted, bool) {
	dom, err := h.drv.lookup(ctx, h.domain(id))
	if err != nil {
		return hypervisor.Promoted{}, false
	}
	spec, err := h.drv.domainXML(ctx, dom, 0)
	if err != nil {
		return hypervisor.Promoted{}, false
	}
	if _, ours := vmspec.ParseMetadata(spec); ours {
		return hypervisor.Promoted{}, false
	}
	out := hypervisor.Promoted{Domain: spec.Name}
	for _, disk := range spec.Devices.Disks {
		if disk.Device == "disk" && disk.Source != nil && disk.Source.File != nil {
			out.Disks = append(out.Disks, disk.Source.File.File)
		}
	}
	return out, len(out.Disks) > 0
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var _ hypervisor.Promoter = (*Host)(nil)
