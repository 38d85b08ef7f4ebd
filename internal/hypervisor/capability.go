package hypervisor

import (
	"errors"
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kinds"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Capability is one thing a driver may support.
type Capability uint32

// The capabilities.
const (
	// Restores: boots recovery points as temporary VMs.
	Restores Capability = 1 << iota
	// InstantRestores: boots them from the backup itself, through
	// copy-on-write overlays, without copying the disks first.
	InstantRestores
	// Screenshots: the VM's screen as a picture (and its text screen).
	Screenshots
	// Console: an interactive console (VNC) for a person.
	Console
	// GuestAgent: talks to an agent inside the guest (ping, facts,
	// application checks).
	GuestAgent
	// Snapshots: takes snapshots of running guests for backup jobs.
	Snapshots
	// Quiesce: freezes the guest's file systems for a snapshot.
	Quiesce
	// ChangedBlocks: gives the blocks changed since the last snapshot.
	ChangedBlocks
	// Exports: serves recovery points' disks over NBD (EXPORT restores).
	Exports
	// Images: converts recovery points to image files for download (IMAGE
	// restores).
	Images
	// Promotion: copies a running restore's disks to production storage
	// live and hands the VM over.
	Promotion
	// Files: reads recovery points' filesystems without booting them
	// (file-level restore).
	Files
)

// capabilityNames is the one table of capabilities: name and wire value.
var capabilityNames = []struct {
	c    Capability
	name string
	wire restorev1.HostCapability
}{
	{Restores, "restores", restorev1.HostCapability_HOST_CAPABILITY_RESTORES},
	{InstantRestores, "instant-restores", restorev1.HostCapability_HOST_CAPABILITY_INSTANT_RESTORES},
	{Screenshots, "screenshots", restorev1.HostCapability_HOST_CAPABILITY_SCREENSHOTS},
	{Console, "console", restorev1.HostCapability_HOST_CAPABILITY_CONSOLE},
	{GuestAgent, "guest-agent", restorev1.HostCapability_HOST_CAPABILITY_GUEST_AGENT},
	{Snapshots, "snapshots", restorev1.HostCapability_HOST_CAPABILITY_SNAPSHOTS},
	{Quiesce, "quiesce", restorev1.HostCapability_HOST_CAPABILITY_QUIESCE},
	{ChangedBlocks, "changed-blocks", restorev1.HostCapability_HOST_CAPABILITY_CHANGED_BLOCKS},
	{Exports, "exports", restorev1.HostCapability_HOST_CAPABILITY_EXPORTS},
	{Images, "images", restorev1.HostCapability_HOST_CAPABILITY_IMAGES},
	{Promotion, "promotion", restorev1.HostCapability_HOST_CAPABILITY_PROMOTION},
	{Files, "files", restorev1.HostCapability_HOST_CAPABILITY_FILES},
}

// KVMSet is everything the KVM driver does; a host whose agent reported
// no capabilities (one from before they were reported) is taken to have it.
const KVMSet = Set(Restores | InstantRestores | Screenshots | Console | GuestAgent | Snapshots | Quiesce | ChangedBlocks | Exports | Images | Promotion | Files)

// Wire is the set as the API carries it.
func (s Set) Wire() []restorev1.HostCapability {
	var out []restorev1.HostCapability
	for _, n := range capabilityNames {
		if s.Has(n.c) {
			out = append(out, n.wire)
		}
	}
	return out
}

// FromWire reads a set from the API (unknown values are ignored: a newer
// agent's capability this server does not know is one it never asks for).
func FromWire(ws []restorev1.HostCapability) Set {
	var s Set
	for _, w := range ws {
		for _, n := range capabilityNames {
			if n.wire == w {
				s |= Set(n.c)
			}
		}
	}
	return s
}

// OfHost is what a host can do, from its record.
func OfHost(h *restorev1.Host) Set {
	if len(h.GetCapabilities()) == 0 {
		return KVMSet
	}
	return FromWire(h.GetCapabilities())
}

// KindOfHost is the hypervisor a host's agent drives (a host that reported
// none is a KVM host, like one that reported no capabilities).
func KindOfHost(h *restorev1.Host) kinds.Hypervisor {
	for _, name := range h.GetHypervisors() {
		if k, err := kinds.ParseHypervisor(name); err == nil {
			return k
		}
	}
	return kinds.KVM
}

// Missing is the refusal of a request a host cannot serve: it names the
// capability and the host.
func Missing(host string, c Capability, what string) error {
	return status.Errorf(codes.FailedPrecondition, "host %s cannot %s: its hypervisor lacks the %s capability", host, what, Set(c))
}

// Set is the set of capabilities a driver has.
type Set Capability

// Has says whether every capability of c is in s.
func (s Set) Has(c Capability) bool { return Capability(s)&c == c }

// Names lists the set's capabilities by name.
func (s Set) Names() []string {
	var out []string
	for _, n := range capabilityNames {
		if s.Has(n.c) {
			out = append(out, n.name)
		}
	}
	return out
}

func (s Set) String() string { return strings.Join(s.Names(), ",") }

func (c Capability) String() string { return Set(c).String() }

// ErrUnsupported is what a driver (or the agent) answers for a request
// that needs a capability it lacks.
var ErrUnsupported = errors.New("not supported by this hypervisor")

// Need returns nil when s has c, else an error naming what is missing.
func (s Set) Need(c Capability, driver string) error {
	if s.Has(c) {
		return nil
	}
	return fmt.Errorf("%s: %s %w", Set(c&^Capability(s)), driver, ErrUnsupported)
}
