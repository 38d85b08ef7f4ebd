package lifecycle

import (
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
)

// mode is what a restore mode means: the capability its host needs, what
// it does (for a refusal), whether it runs a VM, whether it writes into an
// overlay, and its default lease.
type mode struct {
	needs   hypervisor.Capability
	does    string
	vm      bool
	overlay bool
	ttl     time.Duration
}

// modes is the one table of restore modes; a mode missing here (none is)
// is taken as VIRTUALIZE.
var modes = map[restorev1.Mode]mode{
	restorev1.Mode_MODE_VIRTUALIZE: {hypervisor.Restores, "boot restores", true, true, DefaultTTLVirtualize},
	restorev1.Mode_MODE_VERIFY:     {hypervisor.Restores, "boot restores", true, true, DefaultTTLVerify},
	restorev1.Mode_MODE_EXPORT:     {hypervisor.Exports, "serve exports", false, true, DefaultTTLVirtualize},
	restorev1.Mode_MODE_IMAGE:      {hypervisor.Images, "make image files", false, false, DefaultTTLImage},
}

func modeOf(m restorev1.Mode) mode {
	if info, ok := modes[m]; ok {
		return info
	}
	return modes[restorev1.Mode_MODE_VIRTUALIZE]
}

// RestoreNeeds is the capability a restore of mode needs of its host:
// exports for an EXPORT and images for an IMAGE (no VM), restores for the
// others.
func RestoreNeeds(m restorev1.Mode) hypervisor.Capability { return modeOf(m).needs }

// WhatModeDoes is what a restore of mode does, for a refusal ("host h
// cannot boot restores").
func WhatModeDoes(m restorev1.Mode) string { return modeOf(m).does }

// HasVM says whether a restore of mode runs a VM (EXPORT and IMAGE do not).
func HasVM(m restorev1.Mode) bool { return modeOf(m).vm }

// HasOverlay says whether a restore of mode writes into an overlay (IMAGE
// does not: it converts into a file of its own).
func HasOverlay(m restorev1.Mode) bool { return modeOf(m).overlay }

// DefaultTTL is the lease a restore of mode gets when none is asked for.
func DefaultTTL(m restorev1.Mode) time.Duration { return modeOf(m).ttl }

// ModeName is a mode as people read it ("IMAGE").
func ModeName(m restorev1.Mode) string { return strings.TrimPrefix(m.String(), "MODE_") }
