package hypervisor

import (
	"errors"
	"fmt"
	"strings"
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
)

var capabilityNames = []struct {
	c    Capability
	name string
}{
	{Restores, "restores"}, {InstantRestores, "instant-restores"}, {Screenshots, "screenshots"}, {Console, "console"},
	{GuestAgent, "guest-agent"}, {Snapshots, "snapshots"}, {Quiesce, "quiesce"}, {ChangedBlocks, "changed-blocks"},
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
