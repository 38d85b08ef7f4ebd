package kvm

import (
	"context"
	"fmt"
	"strings"

	"github.com/digitalocean/go-libvirt"
)

// NodeInfo is the host's size as libvirt reports it.
type NodeInfo struct {
	CPUs      int32
	MemoryMiB int64
}

// Node returns the host's CPUs and memory.
func (d *Driver) Node(ctx context.Context) (NodeInfo, error) {
	return call(ctx, d, "node info", func(l Libvirt) (NodeInfo, error) {
		_, memKiB, cpus, _, _, _, _, _, err := l.NodeGetInfo()
		return NodeInfo{CPUs: cpus, MemoryMiB: int64(memKiB / 1024)}, err
	})
}

// GuestPing asks the domain's QEMU guest agent for guest-ping. It fails
// while the agent is not (yet) answering.
func (d *Driver) GuestPing(ctx context.Context, name string) error {
	dom, err := call(ctx, d, "look up "+name, func(l Libvirt) (libvirt.Domain, error) {
		return l.DomainLookupByName(name)
	})
	if err != nil {
		return err
	}
	out, err := call(ctx, d, "guest-ping "+name, func(l Libvirt) (libvirt.OptString, error) {
		return l.QEMUDomainAgentCommand(dom, `{"execute":"guest-ping"}`, 2, 0)
	})
	if err != nil {
		return err
	}
	if len(out) == 0 || !strings.Contains(out[0], `"return"`) {
		return fmt.Errorf("guest-ping %s: unexpected answer %v", name, out)
	}
	return nil
}
