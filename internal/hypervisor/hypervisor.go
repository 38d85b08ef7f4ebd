package hypervisor

import (
	"context"
	"encoding/json"
	"image"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
)

// Driver is one hypervisor as the agent sees it.
type Driver interface {
	// Kind says which hypervisor it is.
	Kind() kinds.Hypervisor
	// Capabilities is what it supports.
	Capabilities() Set
	// Size is the host's (or cluster's) CPUs and memory.
	Size(ctx context.Context) (Size, error)
	// Close releases its connections.
	Close()
}

// Size is what a host can give restores.
type Size struct {
	CPUs      int32
	MemoryMiB int64
}

// RestoreSpec is what a restore's VM is made of.
type RestoreSpec struct {
	// ID is the restore's id: the driver names its VM and files after it.
	ID       string
	Tenant   string
	ExpireAt time.Time
	VCPUs    int
	// MemoryMiB is the VM's memory.
	MemoryMiB int64
	Firmware  kinds.Firmware
	OS        kinds.OSFamily
	// Disks are the recovery point's disks, each with its backing chain
	// resolved by the repository (never written).
	Disks []Disk
	// Network is the VM's network; Bridge the host bridge of a BRIDGED one;
	// Lab the isolated lab an ISOLATED one shares with other restores.
	Network kinds.Network
	Bridge  string
	Lab     string
	// LinkDown boots the NIC with its link down (until LinkUp).
	LinkDown bool
	// Progress, when set, hears about long steps ("uploading disk0"), with
	// the bytes done of the total when they are counted.
	Progress func(Progress)
}

// Progress is how far a long step is.
type Progress struct {
	Step string
	// Done and Total count bytes (0 of 0: not counted).
	Done, Total int64
}

// Disk is one disk of a restore.
type Disk struct {
	Name string
	// Size is its virtual size (the manifest's, checked against the image
	// by the repository scan).
	Size  int64
	Chain []storage.Layer
}

// Owned is a restore of which the host holds something: a VM, or only
// files left behind.
type Owned struct {
	ID string
	// VM: the hypervisor has a VM for it; Running: that VM runs.
	VM, Running bool
}

// Restorer is what a restore needs of a hypervisor.
type Restorer interface {
	// Prepare makes everything the restore boots from without starting it
	// (KVM: copy-on-write overlays on the chain, the isolated bridge, the
	// domain's definition). It first removes what an interrupted attempt
	// left, and unwinds what it made when it fails.
	Prepare(ctx context.Context, spec RestoreSpec) error
	// Boot starts a prepared restore's VM.
	Boot(ctx context.Context, id string) error
	// Teardown removes everything of the restore: VM, overlays, network,
	// files. It is idempotent: a restore with nothing left is torn down.
	Teardown(ctx context.Context, id string) error
	// Owned lists the restores this host (this agent's host id) holds
	// anything of; another agent's are never listed.
	Owned(ctx context.Context) ([]Owned, error)
	// LinkUp brings a running restore's NIC link up (idempotent).
	LinkUp(ctx context.Context, id string) error
}

// Screen is one screenshot.
type Screen struct {
	Image image.Image
	// Raw is the picture as the hypervisor sent it (PNG or PPM).
	Raw []byte
}

// ExecResult is how a program run in the guest ended.
type ExecResult struct {
	ExitCode int32
	// Signal is the signal that killed it (0: it exited).
	Signal         int32
	Stdout, Stderr []byte
}

// Observer watches a restore's running VM.
type Observer interface {
	// Screenshot takes a screenshot (Screenshots).
	Screenshot(ctx context.Context, id string) (Screen, error)
	// TextScreen reads a text-mode screen as lines (Screenshots).
	TextScreen(ctx context.Context, id string) ([]string, error)
	// Serial is the serial console's output so far.
	Serial(ctx context.Context, id string) ([]byte, error)
	// GuestPing asks the guest agent whether it is up (GuestAgent).
	GuestPing(ctx context.Context, id string) error
	// GuestCommand runs one guest agent command and returns its answer
	// (GuestAgent); args may be nil.
	GuestCommand(ctx context.Context, id, command string, args any) (json.RawMessage, error)
	// GuestExec runs a program in the guest and waits for it (GuestAgent).
	GuestExec(ctx context.Context, id, path string, args ...string) (ExecResult, error)
	// Console returns where the VM's console listens (a socket only this
	// host reaches) and its password (Console).
	Console(ctx context.Context, id string) (ConsoleEndpoint, error)
}

// Exporter is a driver that serves a restore's disks to a machine outside
// Restored (EXPORT restores, no VM): through copy-on-write overlays, so the
// recovery point is never written, on a unix socket only this host
// reaches (the agent's NBD gate serves it over TLS). Teardown ends it.
type Exporter interface {
	// Export makes the overlays and serves them; it unwinds what it made
	// when it fails.
	Export(ctx context.Context, spec RestoreSpec, opts ExportOptions) (Exported, error)
	// ExportSocket is where a restore's NBD exports are served, while they
	// are.
	ExportSocket(id string) (string, bool)
	// SetCHAP gives an iSCSI export's target a new CHAP secret (the one
	// before stops working) and returns its user and secret.
	SetCHAP(ctx context.Context, id string) (user, secret string, err error)
}

// ExportOptions are how an EXPORT restore's disks are served.
type ExportOptions struct {
	ReadWrite bool
	Protocol  kinds.ExportProtocol
}

// Exported is what an export serves: its disks (NBD: each at its URI;
// iSCSI: each a LUN of the one target).
type Exported struct {
	Disks []ExportedDisk
	// ISCSI: the target's portal (HOST:PORT), IQN and CHAP user.
	Portal, IQN, CHAPUser string
}

// ExportedDisk is one disk of an export.
type ExportedDisk struct {
	SnapshotDisk
	// LUN is the disk's LUN on the iSCSI target.
	LUN int
}

// Promoter is a driver that hands a running restore over as a production
// machine: its disks copied, live, to production storage (the chain and
// the overlay left behind), the VM no longer the agent's.
type Promoter interface {
	// Promote copies, pivots and hands over; a cancelled ctx before the
	// pivot aborts the copy and removes it, and the restore runs on as
	// before.
	Promote(ctx context.Context, spec PromoteSpec) (Promoted, error)
	// Promoted finds a restore already handed over (the agent restarted
	// before the control plane heard it).
	Promoted(ctx context.Context, id string) (Promoted, bool)
}

// PromoteSpec is one promotion.
type PromoteSpec struct {
	ID string
	// Pool is the host's storage pool (a directory) the disks go to.
	Pool     string
	Progress func(Progress)
}

// Promoted is a restore handed over: its domain and its disks' files.
type Promoted struct {
	Domain string
	Disks  []string
}

// Imager is a driver that makes image files of recovery points (IMAGE
// restores), kept in the restore's work dir until its teardown (which
// Restorer.Teardown does; Owned lists a restore whose files are all made
// as running).
type Imager interface {
	// Image converts every disk of spec to format; it unwinds what it
	// made when it fails.
	Image(ctx context.Context, spec RestoreSpec, format kinds.ImageFormat) ([]ImageFile, error)
	// ImageFile is a finished image file of a restore's disk.
	ImageFile(id, disk string) (ImageFile, bool)
}

// VMWatcher is a driver that says at once when a restore's VM stops
// without being asked to (its QEMU died, the guest crashed); WatchVMs
// blocks until ctx ends or the watch breaks (the caller watches again).
type VMWatcher interface {
	WatchVMs(ctx context.Context, on func(VMEvent)) error
}

// VMEvent is a restore's VM that stopped unexpectedly, or that its
// hypervisor paused (Paused: a write met a full disk), and why.
type VMEvent struct {
	RestoreID, Reason string
	Paused            bool
}

// OverlayGuard is a driver that can say how much space a restore's files
// on the host take (its overlays, for the most part) and pause its VM:
// what holds an overlay to its growth limit.
type OverlayGuard interface {
	OverlayBytes(ctx context.Context, restoreID string) (uint64, error)
	PauseVM(ctx context.Context, restoreID string) error
}

// DiskServer is a driver that serves a recovery point's disks read-only
// over NBD on a unix socket only this host reaches, through their chains
// as they are (no overlay: nothing can write): what file-level restore
// reads them through.
type DiskServer interface {
	ServeReadOnly(ctx context.Context, key string, disks []Disk) (ReadOnlyDisks, error)
}

// ReadOnlyDisks are disks being served: the socket, each disk's export
// name, and how to stop serving them.
type ReadOnlyDisks struct {
	Socket  string
	Exports map[string]string
	Stop    func()
}

// ImageFile is one disk's image file.
type ImageFile struct {
	Disk, Name, Path string
	Size             int64
	// SHA256 is the file's digest, hex.
	SHA256 string
}

// VMStater is a driver that says what the hypervisor knows of a restore's
// VM: whether it runs and whether its guest tools answer (VMware: power
// state and VMware Tools). A host with no screen or guest agent to watch
// proves a boot with it.
type VMStater interface {
	VMState(ctx context.Context, id string) (VMState, error)
}

// VMState is a restore VM as its hypervisor reports it.
type VMState struct {
	Running bool
	Tools   Tools
}

// Tools is the state of a VM's guest tools.
type Tools uint8

// The guest tools' states.
const (
	ToolsUnknown Tools = iota
	ToolsAbsent
	ToolsNotRunning
	ToolsRunning
)

// ConsoleEndpoint is where a VM's VNC console listens: Network "unix" (a
// socket libvirt made for the domain) or "tcp" (a loopback address).
type ConsoleEndpoint struct {
	Network, Address, Password string
}

// SnapshotSpec says which snapshot to take of which guest.
type SnapshotSpec struct {
	// ID is the snapshot's id: the driver names its checkpoint after it.
	ID string
	// Guest is how the hypervisor knows the guest: its name or UUID;
	// GuestUUID its UUID when the control plane knows it (VMware: the
	// instance UUID), which a driver whose names are not unique prefers.
	Guest, GuestUUID string
	Quiesce          bool
	Incremental      bool
	// Base is the guest's last completed backup, nil before the first.
	Base *SnapshotBase
}

// SnapshotBase is what the control plane recorded at the last completed
// backup: its checkpoint and each disk's source.
type SnapshotBase struct {
	Checkpoint string
	// Sources, Sizes and ChangeIDs are each disk's source, size and change
	// id (VMware CBT) at that backup, by disk name.
	Sources   map[string]string
	Sizes     map[string]int64
	ChangeIDs map[string]string
}

// Snapshot is a snapshot being served: what was obtained (and why it
// differs from what was asked) and where each disk is read.
type Snapshot struct {
	ID                string
	Quiesced          bool
	ConsistencyReason string
	Incremental       bool
	KindReason        string
	Checkpoint        string
	BaseCheckpoint    string
	// Frozen is how long the file systems were frozen.
	Frozen time.Duration
	Disks  []SnapshotDisk
}

// SnapshotDisk is one exported disk.
type SnapshotDisk struct {
	Name, Source string
	Size         int64
	// URI is where the disk is read (nbd://…); Export its export name
	// (the export's secret).
	URI, Export string
	// Bitmap is the metadata context that holds an incremental's changes.
	Bitmap string
	// ChangeID is the hypervisor's change id of the disk at this snapshot
	// (VMware CBT), the next incremental's base.
	ChangeID string
}

// Extents is a page of a snapshot disk's extents to read.
type Extents struct {
	DiskSize int64
	Extents  []Extent
	// Next is the offset the next page starts at, -1 after the last.
	Next int64
}

// Extent is a byte range.
type Extent struct{ Offset, Length int64 }

// Page is the page of up to limit extents from offset on of a disk of
// size bytes whose extents (sorted, not overlapping) a driver listed when
// it took the snapshot; one that holds offset starts there.
func Page(all []Extent, size, offset int64, limit int) Extents {
	out := Extents{DiskSize: size, Next: -1}
	for _, e := range all {
		if e.Offset+e.Length <= offset {
			continue
		}
		if e.Offset < offset {
			e.Length -= offset - e.Offset
			e.Offset = offset
		}
		if len(out.Extents) == limit {
			out.Next = e.Offset
			break
		}
		out.Extents = append(out.Extents, e)
	}
	return out
}

// ReleaseSpec says which snapshot to release and how its backup ended.
type ReleaseSpec struct {
	ID, Guest, GuestUUID string
	// Completed: the backup job read everything, so the snapshot's
	// checkpoint is the next incremental's base (older ones go).
	Completed bool
}

// Snapshotter is what a snapshot for a backup job needs of a hypervisor.
type Snapshotter interface {
	// TakeSnapshot checks the chain for an incremental (a FULL, with the
	// reason, when it does not hold), quiesces when asked and can, and
	// starts serving the disks.
	TakeSnapshot(ctx context.Context, spec SnapshotSpec) (*Snapshot, error)
	// ChangedExtents lists up to limit extents of a served disk to read
	// from offset on: the changed ones of an incremental, the allocated
	// ones of a full.
	ChangedExtents(ctx context.Context, s *Snapshot, disk string, offset int64, limit int) (Extents, error)
	// ReleaseSnapshot stops serving and keeps or drops its checkpoint.
	ReleaseSnapshot(ctx context.Context, spec ReleaseSpec) error
	// EndStale ends what an earlier run of this agent served (nothing
	// reads it any more) and says how many it ended.
	EndStale(ctx context.Context) (int, error)
	// Inventory lists the host's domains that are not Restored's own
	// restore VMs: the only source of which guests exist.
	Inventory(ctx context.Context) ([]Domain, error)
}

// Domain is one domain of a host's inventory.
type Domain struct {
	UUID, Name string
	// Moref is a VMware VM's managed object id (vm-42).
	Moref   string
	Running bool
	// Disks are its disk targets (vda, …).
	Disks []string
	// OwnerTenant is the tenant the hoster assigned it in its XML, if any.
	OwnerTenant string
}
