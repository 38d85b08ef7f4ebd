//go:build !linux

package kvm

import (
	"context"
	"fmt"
	"runtime"

	"github.com/restored/restored/internal/hypervisor"
)

// Export implements hypervisor.Exporter: KVM hosts are Linux.
func (h *Host) Export(context.Context, hypervisor.RestoreSpec, hypervisor.ExportOptions) (hypervisor.Exported, error) {
	return hypervisor.Exported{}, fmt.Errorf("exports need a Linux KVM host, not %s", runtime.GOOS)
}

// SetCHAP implements hypervisor.Exporter.
func (h *Host) SetCHAP(context.Context, string) (string, string, error) {
	return "", "", fmt.Errorf("exports need a Linux KVM host, not %s", runtime.GOOS)
}

func (h *Host) exportServing(string) bool { return false }

// ExportSocket implements hypervisor.Exporter.
func (h *Host) ExportSocket(string) (string, bool) { return "", false }

func (h *Host) stopExport(string) error { return nil }
