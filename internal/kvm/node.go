package kvm

import (
	"context"
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
	_, err := d.GuestCommand(ctx, name, "guest-ping", nil, 2)
	return err
}
