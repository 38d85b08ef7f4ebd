package kvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/restored/restored/internal/netiso"
	"libvirt.org/go/libvirtxml"
)

// isolatedBridge is an ISOLATED restore's bridge: its own, or its lab's.
func isolatedBridge(id, lab string) string {
	if lab != "" {
		return netiso.BridgeName("lab:" + lab)
	}
	return netiso.BridgeName(id)
}

// labFile keeps a restore's lab in its work dir, for its teardown.
func (h *Host) labFile(id string) string { return filepath.Join(h.restoreDir(id), "lab") }

func (h *Host) labOf(id string) string {
	b, _ := os.ReadFile(h.labFile(id))
	return strings.TrimSpace(string(b))
}

// releaseNetwork removes a torn-down restore's isolated bridge: its own,
// or its lab's once no other restore of the lab is left on the host (its
// work dir must be gone already; h.labs is held).
func (h *Host) releaseNetwork(ctx context.Context, id, lab string) error {
	if lab == "" {
		return netiso.Remove(ctx, netiso.BridgeName(id))
	}
	entries, err := os.ReadDir(h.restoresDir())
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != id && h.labOf(e.Name()) == lab {
			return nil // the lab runs on
		}
	}
	return netiso.Remove(ctx, isolatedBridge(id, lab))
}

// LinkUp implements hypervisor.Restorer: the NIC's link up, in the running
// domain and its definition.
func (h *Host) LinkUp(ctx context.Context, id string) error {
	return noVM(h.drv.LinkUp(ctx, h.domain(id)))
}

// LinkUp brings the link of a domain's interfaces up.
func (d *Driver) LinkUp(ctx context.Context, name string) error {
	dom, err := d.lookup(ctx, name)
	if err != nil {
		return err
	}
	x, err := call(ctx, d, "read the XML of "+name, func(l Libvirt) (string, error) { return l.DomainGetXMLDesc(dom, 0) })
	if err != nil {
		return err
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(x); err != nil {
		return err
	}
	if def.Devices == nil {
		return nil
	}
	for _, iface := range def.Devices.Interfaces {
		if iface.Link == nil || iface.Link.State != "down" {
			continue
		}
		iface.Link = &libvirtxml.DomainInterfaceLink{State: "up"}
		ix, err := iface.Marshal()
		if err != nil {
			return err
		}
		_, err = call(ctx, d, "link up on "+name, func(l Libvirt) (struct{}, error) {
			return struct{}{}, l.DomainUpdateDeviceFlags(dom, ix, libvirt.DomainDeviceModifyLive|libvirt.DomainDeviceModifyConfig)
		})
		if err != nil {
			return fmt.Errorf("link up on %s: %w", name, err)
		}
	}
	return nil
}
