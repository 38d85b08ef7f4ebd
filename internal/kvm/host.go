package kvm

import (
	"cmp"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/vmspec"
)

// Host is the KVM hypervisor of one agent's host, behind the agent's
// hypervisor interfaces: restores are libvirt domains booted from qcow2
// overlays in the work dir, snapshots are libvirt pull-mode backups served
// over NBD.
type Host struct {
	drv    *Driver
	hostID string
	// workDir holds restores/<id>/ (overlays, NVRAM, serial log) and
	// snapshots/ (backup scratch files).
	workDir string
	facts   vmspec.HostFacts
	log     *slog.Logger
	// labs serializes making and removing lab bridges (a lab's restores
	// start and end concurrently).
	labs sync.Mutex
	// repository is the recovery points' root: restores are granted read
	// access to their chain below it (confine); empty: QEMU runs as
	// libvirt's default user (unit tests of other parts).
	repository string
	// qemuGroup is the gid restores' QEMUs run with (confine.KVMGroup).
	qemuGroup uint32
	// preparing holds the uids of restores being prepared, not running yet.
	preparing sync.Map // restore id → uint32
	// iscsiListen, iscsiAdvertise and promoteBandwidth: see HostConfig.
	iscsiListen, iscsiAdvertise string
	promoteBandwidth            int64
}

var (
	_ hypervisor.Driver      = (*Host)(nil)
	_ hypervisor.Restorer    = (*Host)(nil)
	_ hypervisor.Observer    = (*Host)(nil)
	_ hypervisor.Snapshotter = (*Host)(nil)
)

// HostConfig configures a Host.
type HostConfig struct {
	// HostID is the agent's host: it owns only the domains, exports and
	// checkpoints it made.
	HostID  string
	WorkDir string
	// Repository is the recovery points' root (see Host.repository), and
	// QEMUGroup the gid restores' QEMUs run with (confine.KVMGroup).
	Repository string
	QEMUGroup  uint32
	Facts      vmspec.HostFacts
	Log        *slog.Logger
	// ISCSIListen is the address iSCSI exports' targets listen on (default
	// 127.0.0.1), ISCSIAdvertise the one initiators dial (default the
	// listen address).
	ISCSIListen, ISCSIAdvertise string
	// PromoteBandwidth bounds each disk's copy of a promotion, bytes per
	// second (0: as fast as the storage goes).
	PromoteBandwidth int64
}

// NewHost returns the KVM host on drv.
func NewHost(drv *Driver, cfg HostConfig) *Host {
	return &Host{drv: drv, hostID: cfg.HostID, workDir: cfg.WorkDir, repository: cfg.Repository, qemuGroup: cfg.QEMUGroup, facts: cfg.Facts, log: cfg.Log,
		iscsiListen: cmp.Or(cfg.ISCSIListen, "127.0.0.1"), iscsiAdvertise: cfg.ISCSIAdvertise, promoteBandwidth: cfg.PromoteBandwidth}
}

// Kind implements hypervisor.Driver.
func (h *Host) Kind() kinds.Hypervisor { return kinds.KVM }

// Capabilities implements hypervisor.Driver: KVM does everything.
func (h *Host) Capabilities() hypervisor.Set { return hypervisor.KVMSet }

// Size implements hypervisor.Driver.
func (h *Host) Size(ctx context.Context) (hypervisor.Size, error) {
	n, err := h.drv.Node(ctx)
	return hypervisor.Size{CPUs: n.CPUs, MemoryMiB: n.MemoryMiB}, err
}

// Close implements hypervisor.Driver.
func (h *Host) Close() { h.drv.Close() }

// Driver is the libvirt driver underneath.
func (h *Host) Driver() *Driver { return h.drv }

func (h *Host) restoresDir() string { return filepath.Join(h.workDir, "restores") }

func (h *Host) restoreDir(id string) string {
	return filepath.Join(h.restoresDir(), strings.ReplaceAll(id, "/", "_"))
}

// serialPath is the restore's serial console log (written by virtlogd).
func (h *Host) confinePath(id string) string { return filepath.Join(h.restoreDir(id), "confine.json") }

func (h *Host) serialPath(id string) string { return filepath.Join(h.restoreDir(id), "serial.log") }

// Facts are the host facts domains are built for.
func (h *Host) Facts() vmspec.HostFacts { return h.facts }

// domain is the name of a restore's domain on this host.
func (h *Host) domain(id string) string { return h.facts.DomainName(id) }
