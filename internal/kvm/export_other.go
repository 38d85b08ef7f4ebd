//go:build !linux

package kvm

import (
	"context"
	"fmt"
	"runtime"

	"github.com/restored/restored/internal/hypervisor"
)

// Export implements hypervisor.Exporter: KVM hosts are Linux.
func (h *Host) Export(context.Context, hypervisor.RestoreSpec, bool) ([]hypervisor.SnapshotDisk, error) {
	return nil, fmt.Errorf("exports need a Linux KVM host, not %s", runtime.GOOS)
}

// ExportSocket implements hypervisor.Exporter.
func (h *Host) ExportSocket(string) (string, bool) { return "", false }

func (h *Host) stopExport(string) error { return nil }
