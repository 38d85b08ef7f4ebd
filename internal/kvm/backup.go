package kvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"libvirt.org/go/libvirtxml"
)

// Names Restored gives what it creates on a guest, so that it finds (and
// only touches) its own: checkpoints "restored-<snapshot id>", NBD exports
// "rst-<owner>.<disk>.<secret>" (the owner is the agent's host id).
const (
	CheckpointPrefix = "restored-"
	exportPrefix     = "rst-"
)

// CheckpointName is the checkpoint a snapshot's backup job creates.
func CheckpointName(snapshotID string) string { return CheckpointPrefix + snapshotID }

// ErrBackupRunning says the guest runs a backup job already.
var ErrBackupRunning = errors.New("one backup job at a time")

// BackupSpec says which snapshot to take of which guest.
type BackupSpec struct {
	// Domain is the guest's libvirt name.
	Domain string
	// Owner is the agent's host id: it ends only its own jobs.
	Owner string
	// ID names the new checkpoint (CheckpointName(ID)).
	ID string
	// Quiesce freezes the guest's file systems through its agent.
	Quiesce bool
	// Incremental asks for only what changed since Base.
	Incremental bool
	// Base is the guest's last completed backup, nil before the first.
	Base *BackupBase
	// Socket is the unix socket QEMU's NBD server listens on (under 108
	// bytes): only this host reaches it; the agent's NBD gate serves it to
	// backup jobs over TLS.
	Socket string
	// ScratchDir holds the job's scratch files (the blocks the guest
	// overwrites while the export is read); libvirt removes them at the end.
	ScratchDir string
}

// BackupBase is what the control plane recorded at the last completed
// backup: its checkpoint and each disk's source.
type BackupBase = hypervisor.SnapshotBase

// Backup is a running pull-mode backup job: what was obtained and where to
// read it.
type Backup struct {
	Quiesced          bool
	ConsistencyReason string
	Incremental       bool
	KindReason        string
	Checkpoint        string
	BaseCheckpoint    string
	// Socket is where the exports are served (BackupSpec.Socket).
	Socket string
	Disks  []BackupDisk
	// Frozen is how long the file systems were frozen (Quiesced).
	Frozen time.Duration
}

// BackupDisk is one exported disk.
type BackupDisk struct {
	Name, Source string
	Size         int64
	Export       string
	// Bitmap is the NBD metadata context of an incremental's changes.
	Bitmap string
}

// BeginBackup checks the guest's checkpoint chain (for an incremental),
// freezes the guest when asked, starts a pull-mode backup with a new
// checkpoint, thaws, and returns the exports. An incremental whose chain
// does not match what was recorded becomes a FULL, with the reason.
func (d *Driver) BeginBackup(ctx context.Context, spec BackupSpec) (*Backup, error) {
	dom, err := d.lookupGuest(ctx, spec.Domain)
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("guest %q is not defined on this host", spec.Domain)
		}
		return nil, err
	}
	// libvirt runs one backup job per domain, and makes a second wait 30 s
	// for the first one's lock before refusing it: refuse it at once.
	if _, running, err := d.backupJob(ctx, dom); err != nil {
		return nil, err
	} else if running {
		return nil, fmt.Errorf("guest %s is running a backup job already: %w", spec.Domain, ErrBackupRunning)
	}
	xml, err := call(ctx, d, "read "+spec.Domain, func(l Libvirt) (string, error) { return l.DomainGetXMLDesc(dom, 0) })
	if err != nil {
		return nil, err
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(xml); err != nil {
		return nil, fmt.Errorf("parse %s's XML: %w", spec.Domain, err)
	}
	b := &Backup{Checkpoint: CheckpointName(spec.ID)}
	if b.Disks, err = backupDisks(&def); err != nil {
		return nil, err
	}
	for i := range b.Disks {
		capacity, err := call(ctx, d, "size of "+b.Disks[i].Name, func(l Libvirt) (uint64, error) {
			_, c, _, err := l.DomainGetBlockInfo(dom, b.Disks[i].Name, 0)
			return c, err
		})
		if err != nil {
			return nil, err
		}
		b.Disks[i].Size = int64(capacity)
		if b.Disks[i].Export, err = exportName(spec.Owner, b.Disks[i].Name); err != nil {
			return nil, err
		}
	}
	if spec.Incremental {
		if reason := d.chainProblem(ctx, dom, spec.Base, b.Disks); reason != "" {
			b.KindReason = "an incremental was asked; took a FULL because " + reason
		} else {
			b.Incremental, b.BaseCheckpoint = true, spec.Base.Checkpoint
		}
	}
	if !filepath.IsAbs(spec.ScratchDir) {
		return nil, fmt.Errorf("the scratch directory %q must be an absolute path", spec.ScratchDir)
	}
	if !filepath.IsAbs(spec.Socket) || len(spec.Socket) > 107 {
		return nil, fmt.Errorf("the NBD socket %q must be an absolute path of at most 107 bytes", spec.Socket)
	}
	b.Socket = spec.Socket
	backupXML, checkpointXML, err := backupDocuments(spec, b)
	if err != nil {
		return nil, err
	}
	if spec.Quiesce {
		// The pause counts from asking for the freeze to the thaw's answer:
		// the guest's writes may block anywhere in between.
		start := time.Now()
		if err := d.freeze(ctx, dom); err != nil {
			b.ConsistencyReason = "quiesce was asked but the guest agent did not freeze the file systems: " + err.Error()
		} else {
			b.Quiesced = true
			defer func() { b.Frozen = time.Since(start) }()
			defer d.thaw(dom)
		}
	}
	_, err = call(ctx, d, "begin backup of "+spec.Domain, func(l Libvirt) (struct{}, error) {
		return struct{}{}, l.DomainBackupBegin(dom, backupXML, libvirt.OptString{checkpointXML}, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("begin the backup of %s: %w", spec.Domain, err)
	}
	for i := range b.Disks {
		if b.Incremental {
			b.Disks[i].Bitmap = "qemu:dirty-bitmap:" + bitmapName(b.Disks[i].Name)
		}
	}
	return b, nil
}

// lookupGuest finds a guest by its name or, when that is a UUID and no
// domain has it as a name, by its UUID.
func (d *Driver) lookupGuest(ctx context.Context, nameOrUUID string) (libvirt.Domain, error) {
	dom, err := d.lookup(ctx, nameOrUUID)
	if !IsNotFound(err) {
		return dom, err
	}
	id, perr := uuid.Parse(nameOrUUID)
	if perr != nil {
		return dom, err
	}
	return call(ctx, d, "look up "+nameOrUUID, func(l Libvirt) (libvirt.Domain, error) { return l.DomainLookupByUUID(libvirt.UUID(id)) })
}

// backupDisks lists the guest's disks that a backup covers: every
// device="disk"; each must be a qcow2 file (checkpoints are qcow2 bitmaps).
func backupDisks(def *libvirtxml.Domain) ([]BackupDisk, error) {
	var out []BackupDisk
	if def.Devices == nil {
		return nil, fmt.Errorf("guest %s has no devices", def.Name)
	}
	for _, disk := range def.Devices.Disks {
		if disk.Device != "" && disk.Device != "disk" || disk.Target == nil {
			continue
		}
		if disk.Source == nil || disk.Source.File == nil {
			return nil, fmt.Errorf("disk %s of %s is not a file: Restored backs up qcow2 files", disk.Target.Dev, def.Name)
		}
		if disk.Driver == nil || disk.Driver.Type != kinds.QCOW2.String() {
			return nil, fmt.Errorf("disk %s of %s is not qcow2: checkpoints need qcow2 bitmaps", disk.Target.Dev, def.Name)
		}
		out = append(out, BackupDisk{Name: disk.Target.Dev, Source: disk.Source.File.File})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("guest %s has no disk to back up", def.Name)
	}
	return out, nil
}

// chainProblem says why an incremental from base would not be right, or "".
func (d *Driver) chainProblem(ctx context.Context, dom libvirt.Domain, base *BackupBase, disks []BackupDisk) string {
	if base == nil || base.Checkpoint == "" {
		return "no completed backup of this guest is recorded yet"
	}
	cp, err := call(ctx, d, "look up checkpoint "+base.Checkpoint, func(l Libvirt) (libvirt.DomainCheckpoint, error) {
		return l.DomainCheckpointLookupByName(dom, base.Checkpoint, 0)
	})
	if isCode(err, libvirt.ErrNoDomainCheckpoint) {
		return fmt.Sprintf("checkpoint %s, recorded at the last backup, is gone from the guest (deleted outside Restored?)", base.Checkpoint)
	}
	if err != nil {
		return fmt.Sprintf("checkpoint %s cannot be looked up: %v", base.Checkpoint, err)
	}
	// Asking for the size makes QEMU read every bitmap since the checkpoint:
	// it fails when one is missing or inconsistent (after a crash).
	xml, err := call(ctx, d, "read checkpoint "+base.Checkpoint, func(l Libvirt) (string, error) {
		return l.DomainCheckpointGetXMLDesc(cp, uint32(libvirt.DomainCheckpointXMLSize))
	})
	if err != nil {
		return fmt.Sprintf("the bitmaps of checkpoint %s are missing or inconsistent: %v", base.Checkpoint, err)
	}
	var def libvirtxml.DomainCheckpoint
	if err := def.Unmarshal(xml); err != nil {
		return fmt.Sprintf("checkpoint %s's XML does not parse: %v", base.Checkpoint, err)
	}
	bitmaps := map[string]bool{}
	if def.Disks != nil {
		for _, dd := range def.Disks.Disks {
			bitmaps[dd.Name] = dd.Checkpoint == "bitmap"
		}
	}
	for _, disk := range disks {
		was, known := base.Sources[disk.Name]
		switch {
		case !known:
			return fmt.Sprintf("disk %s is new since checkpoint %s", disk.Name, base.Checkpoint)
		case was != disk.Source:
			return fmt.Sprintf("disk %s changed since checkpoint %s (was %s, now %s)", disk.Name, base.Checkpoint, was, disk.Source)
		case !bitmaps[disk.Name]:
			return fmt.Sprintf("checkpoint %s has no bitmap for disk %s", base.Checkpoint, disk.Name)
		}
	}
	return ""
}

func backupDocuments(spec BackupSpec, b *Backup) (string, string, error) {
	bx := libvirtxml.DomainBackup{Pull: &libvirtxml.DomainBackupPull{
		Server: &libvirtxml.DomainBackupPullServer{UNIX: &libvirtxml.DomainBackupPullServerUNIX{Socket: spec.Socket}},
		Disks:  &libvirtxml.DomainBackupPullDisks{},
	}}
	cx := libvirtxml.DomainCheckpoint{Name: b.Checkpoint, Description: "Restored snapshot " + spec.ID, Disks: &libvirtxml.DomainCheckpointDisks{}}
	if b.Incremental {
		bx.Incremental = b.BaseCheckpoint
	}
	for _, disk := range b.Disks {
		// backup="yes" is the default (and needs type= with it).
		pd := libvirtxml.DomainBackupPullDisk{Name: disk.Name, ExportName: disk.Export,
			Scratch: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: filepath.Join(spec.ScratchDir, spec.ID+"-"+disk.Name+".scratch")}}}
		if b.Incremental {
			pd.ExportBitmap = bitmapName(disk.Name)
		}
		bx.Pull.Disks.Disks = append(bx.Pull.Disks.Disks, pd)
		cx.Disks.Disks = append(cx.Disks.Disks, libvirtxml.DomainCheckpointDisk{Name: disk.Name, Checkpoint: "bitmap"})
	}
	backupXML, err := bx.Marshal()
	if err != nil {
		return "", "", err
	}
	checkpointXML, err := cx.Marshal()
	return backupXML, checkpointXML, err
}

func bitmapName(disk string) string { return exportPrefix + "changed-" + disk }

// exportName is random per snapshot: it is the export's secret.
func exportName(owner, disk string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return exportPrefix + owner + "." + disk + "." + hex.EncodeToString(b[:]), nil
}

// freeze freezes every file system of the guest through its agent, within
// 10 s (a guest without an agent answers an error at once or not at all).
func (d *Driver) freeze(ctx context.Context, dom libvirt.Domain) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := call(ctx, d, "freeze "+dom.Name, func(l Libvirt) (int32, error) { return l.DomainFsfreeze(dom, nil, 0) })
	return err
}

// FreezeThaw freezes and at once thaws the guest's file systems and says
// how long that took: the least pause a quiesced snapshot can cost (the
// benchmarks' baseline).
func (d *Driver) FreezeThaw(ctx context.Context, domain string) (time.Duration, error) {
	dom, err := d.lookup(ctx, domain)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := d.freeze(ctx, dom); err != nil {
		return 0, err
	}
	d.thaw(dom)
	return time.Since(start), nil
}

// thaw thaws the guest, even when the caller's context is done.
func (d *Driver) thaw(dom libvirt.Domain) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call(ctx, d, "thaw "+dom.Name, func(l Libvirt) (int32, error) { return l.DomainFsthaw(dom, nil, 0) }); err != nil {
		d.log.Error("thawing the guest failed: its file systems may still be frozen", "domain", dom.Name, "err", err)
	}
}

// EndBackup ends the guest's backup job if it is owner's (its exports are
// named so). No job is not an error.
func (d *Driver) EndBackup(ctx context.Context, owner, domain string) error {
	dom, err := d.lookupGuest(ctx, domain)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = d.endBackup(ctx, owner, dom)
	return err
}

// backupJob reads the domain's backup job: its XML, or running false when
// it has none (or the domain is gone).
func (d *Driver) backupJob(ctx context.Context, dom libvirt.Domain) (string, bool, error) {
	xml, err := call(ctx, d, "read the backup job of "+dom.Name, func(l Libvirt) (string, error) { return l.DomainBackupGetXMLDesc(dom, 0) })
	if isCode(err, libvirt.ErrNoDomainBackup) || isCode(err, libvirt.ErrOperationInvalid) || IsNotFound(err) {
		return "", false, nil
	}
	return xml, err == nil, err
}

// endBackup ends the domain's backup job if it is owner's and says whether
// it did.
func (d *Driver) endBackup(ctx context.Context, owner string, dom libvirt.Domain) (bool, error) {
	xml, running, err := d.backupJob(ctx, dom)
	if err != nil || !running || !strings.Contains(xml, exportPrefix+owner+".") {
		return false, err // none, or someone else's
	}
	_, err = call(ctx, d, "end the backup job of "+dom.Name, func(l Libvirt) (struct{}, error) { return struct{}{}, l.DomainAbortJob(dom) })
	if err != nil && !isCode(err, libvirt.ErrOperationInvalid) {
		return false, err
	}
	// The job ends (and QEMU stops its NBD server) a moment after the abort.
	for {
		if _, running, err := d.backupJob(ctx, dom); err == nil && !running {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("the backup job of %s did not end: %w", dom.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// EndStaleBackups ends every backup job of owner's on the host: after an
// agent restart nobody serves them any more.
func (d *Driver) EndStaleBackups(ctx context.Context, owner string) (int, error) {
	doms, err := call(ctx, d, "list domains", func(l Libvirt) ([]libvirt.Domain, error) {
		ds, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
		return ds, err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dom := range doms {
		ended, err := d.endBackup(ctx, owner, dom)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

// DeleteCheckpoint removes a checkpoint of Restored's (its bitmap merges
// into its parent's, so the chain stays right). Gone already is not an
// error.
func (d *Driver) DeleteCheckpoint(ctx context.Context, domain, name string) error {
	if !strings.HasPrefix(name, CheckpointPrefix) {
		return fmt.Errorf("checkpoint %q is not Restored's", name)
	}
	dom, err := d.lookupGuest(ctx, domain)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cp, err := call(ctx, d, "look up checkpoint "+name, func(l Libvirt) (libvirt.DomainCheckpoint, error) {
		return l.DomainCheckpointLookupByName(dom, name, 0)
	})
	if isCode(err, libvirt.ErrNoDomainCheckpoint) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = call(ctx, d, "delete checkpoint "+name, func(l Libvirt) (struct{}, error) { return struct{}{}, l.DomainCheckpointDelete(cp, 0) })
	if isCode(err, libvirt.ErrOperationUnsupported) {
		// A shut-off guest: libvirt cannot merge bitmaps without QEMU. Drop
		// the checkpoint; its bitmap stays in the qcow2, unused.
		d.log.Warn("the guest is not running: removing the checkpoint's metadata only", "domain", domain, "checkpoint", name)
		_, err = call(ctx, d, "delete checkpoint "+name, func(l Libvirt) (struct{}, error) {
			return struct{}{}, l.DomainCheckpointDelete(cp, libvirt.DomainCheckpointDeleteMetadataOnly)
		})
	}
	return err
}

// Checkpoints lists the guest's checkpoints that are Restored's.
func (d *Driver) Checkpoints(ctx context.Context, domain string) ([]string, error) {
	dom, err := d.lookupGuest(ctx, domain)
	if err != nil {
		return nil, err
	}
	cps, err := call(ctx, d, "list checkpoints of "+domain, func(l Libvirt) ([]libvirt.DomainCheckpoint, error) {
		cs, _, err := l.DomainListAllCheckpoints(dom, 1, 0)
		return cs, err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cps {
		if strings.HasPrefix(c.Name, CheckpointPrefix) {
			out = append(out, c.Name)
		}
	}
	return out, nil
}
