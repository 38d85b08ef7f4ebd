package vmspec

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/storage"
	"libvirt.org/go/libvirtxml"
)

// HostFacts are found once per host by the agent.
type HostFacts struct {
	// Accelerator is "kvm" when KVM guests really run here, else "tcg".
	Accelerator string
	// Emulator is the QEMU binary (default /usr/bin/qemu-system-x86_64).
	Emulator string
	// OVMFCode and OVMFVars are the UEFI firmware and its variable
	// template (Debian's ovmf package).
	OVMFCode, OVMFVars string
	// DomainPrefix starts the names of this host's domains (default
	// DefaultDomainPrefix): agents that share one libvirtd each take their
	// own.
	DomainPrefix string
}

// DefaultDomainPrefix starts a restore's domain name.
const DefaultDomainPrefix = "restored-"

// DomainName is the libvirt name of a restore's domain on this host: the
// host's prefix and the restore id, never anything the guest or the
// manifest controls.
func (f HostFacts) DomainName(restoreID string) string {
	if f.DomainPrefix == "" {
		return DefaultDomainPrefix + restoreID
	}
	return f.DomainPrefix + restoreID
}

// ChainElement is one read-only image below the overlay, top first, as
// the repository resolved it.
type ChainElement = storage.Layer

// DiskInput is one disk of the restore.
type DiskInput struct {
	Name string
	// Overlay is the qcow2 overlay the agent made in its work dir.
	Overlay string
	// Chain is the recovery point's images, top (the overlay's backing file)
	// first; they are never written and never relabelled.
	Chain []ChainElement
}

// Input is everything about one restore that shapes its domain.
type Input struct {
	RestoreID string
	Tenant    string
	// HostID is the agent's host: an agent only ever garbage-collects the
	// domains it made, even when several agents (or tests) share a libvirtd.
	HostID    string
	ExpireAt  time.Time
	VCPUs     int
	MemoryMiB int64
	// Firmware is the firmware (AUTO already resolved from the manifest).
	Firmware kinds.Firmware
	// OS is the recovery point's OS family (from the manifest).
	OS    kinds.OSFamily
	Disks []DiskInput
	// Network is none, isolated or bridged; Bridge names the bridge for
	// isolated (made by the agent) and bridged (existing) networks.
	Network kinds.Network
	Bridge  string
	// LinkDown boots the NIC with its link down (an identity conflict).
	LinkDown bool
	// SerialLog is where virtlogd writes the serial console.
	SerialLog string
	// VNCPassword protects the console (VNC listens on a unix socket only).
	VNCPassword string
	// NVRAM is the per-domain UEFI variable store (uefi only).
	NVRAM string
	// DACLabel is the "+uid:+gid" QEMU runs as (confine.Identity): a
	// static DAC label; empty leaves libvirt's default user.
	DACLabel string
}

// Context is what every configurator sees.
type Context struct {
	In   Input
	Host HostFacts
}

// Configurator fills in one concern of the domain.
type Configurator func(c *Context, d *libvirtxml.Domain) error

// Pipeline is the order configurators run in.
var Pipeline = []Configurator{
	configureIdentity,
	configureMetadata,
	configureResources,
	configureFirmware,
	configureFeatures,
	configureDisks,
	configureNetwork,
	configureConsole,
	configureGraphics,
	configureGuestAgent,
}

// MinMemoryMiB is the least memory a restored VM gets: the Debian kernel
// does not boot in less.
const MinMemoryMiB = 96

var (
	restoreID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	dacLabel  = regexp.MustCompile(`^\+[1-9][0-9]{0,9}:\+[0-9]{1,10}$`)
)

// plainPath is a path the domain XML carries as it is: absolute, valid
// UTF-8, no control characters (XML would change or refuse them, and QEMU
// would open another file).
func plainPath(p string) bool {
	if !filepath.IsAbs(p) || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Validate checks the input before any configurator runs.
func (in *Input) Validate() error {
	switch {
	case !restoreID.MatchString(in.RestoreID):
		return fmt.Errorf("restore id %q cannot name a domain", in.RestoreID)
	case in.Tenant != "" && !kinds.IsDNSLabel(in.Tenant):
		return fmt.Errorf("tenant %q is not a lowercase DNS label", in.Tenant)
	case in.VCPUs < 1 || in.VCPUs > 64:
		return fmt.Errorf("vcpus %d out of 1..64", in.VCPUs)
	case in.MemoryMiB < MinMemoryMiB:
		return fmt.Errorf("memory %d MiB is below %d MiB, the least the Debian kernel boots in", in.MemoryMiB, MinMemoryMiB)
	case !in.Firmware.Valid():
		return fmt.Errorf("firmware %s must be bios or uefi", in.Firmware)
	case !in.OS.Valid():
		return fmt.Errorf("os %s must be linux, windows or other", in.OS)
	case len(in.Disks) == 0:
		return fmt.Errorf("a domain needs at least one disk")
	case len(in.Disks) > 26:
		return fmt.Errorf("%d disks is more than 26", len(in.Disks))
	case in.Firmware == kinds.UEFI && !plainPath(in.NVRAM):
		return fmt.Errorf("uefi needs an absolute NVRAM path")
	case !plainPath(in.SerialLog):
		return fmt.Errorf("serial log path %q must be absolute", in.SerialLog)
	case in.VNCPassword == "":
		return fmt.Errorf("a VNC password is required")
	case in.DACLabel != "" && !dacLabel.MatchString(in.DACLabel):
		return fmt.Errorf("DAC label %q is not +uid:+gid", in.DACLabel)
	}
	for _, d := range in.Disks {
		if !plainPath(d.Overlay) || len(d.Chain) == 0 {
			return fmt.Errorf("disk %s needs an absolute overlay path and a backing chain", d.Name)
		}
		for _, c := range d.Chain {
			if !plainPath(c.Path) || !c.Format.Valid() {
				return fmt.Errorf("disk %s: chain element %q (%s) must be an absolute raw or qcow2 path", d.Name, c.Path, c.Format)
			}
		}
	}
	switch in.Network {
	case kinds.NoNetwork:
	case kinds.Isolated, kinds.Bridged:
		if !kinds.ValidBridgeName(in.Bridge) {
			return fmt.Errorf("network %s needs a bridge name of 1-15 letters, digits, '_', '.' or '-', not %q", in.Network, in.Bridge)
		}
	default:
		return fmt.Errorf("network %s must be none, isolated or bridged", in.Network)
	}
	return nil
}

// Build runs the pipeline.
func Build(c *Context) (*libvirtxml.Domain, error) {
	if err := c.In.Validate(); err != nil {
		return nil, fmt.Errorf("domain spec: %w", err)
	}
	if c.Host.Accelerator != "kvm" && c.Host.Accelerator != "tcg" {
		return nil, fmt.Errorf("domain spec: host accelerator %q must be kvm or tcg", c.Host.Accelerator)
	}
	d := &libvirtxml.Domain{}
	for _, cfg := range Pipeline {
		if err := cfg(c, d); err != nil {
			return nil, fmt.Errorf("domain spec: %w", err)
		}
	}
	return d, nil
}

// DomainName is the libvirt name of a restore's domain on a host with the
// default prefix.
func DomainName(restoreID string) string { return HostFacts{}.DomainName(restoreID) }
