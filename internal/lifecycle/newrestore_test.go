package lifecycle

import (
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestAnOverlayMayGrowToItsRecoveryPointsSizeAtMost10GiBByDefault(t *testing.T) {
	gib := int64(1 << 30)
	disks := func(sizes ...int64) *restorev1.RecoveryPoint {
		rp := &restorev1.RecoveryPoint{Id: "rp"}
		for _, s := range sizes {
			rp.Disks = append(rp.Disks, &restorev1.Disk{VirtualSize: s})
		}
		return rp
	}
	for _, tc := range []struct {
		name string
		spec NewRestoreSpec
		want int64
	}{
		{"a 1 GiB disk", NewRestoreSpec{RecoveryPoint: disks(gib), Mode: restorev1.Mode_MODE_VERIFY}, 1024},
		{"two disks", NewRestoreSpec{RecoveryPoint: disks(gib, 2*gib+1), Mode: restorev1.Mode_MODE_VIRTUALIZE}, 3073},
		{"1 TiB", NewRestoreSpec{RecoveryPoint: disks(1024 * gib), Mode: restorev1.Mode_MODE_EXPORT}, DefaultOverlayLimitMiB},
		{"a tiny disk", NewRestoreSpec{RecoveryPoint: disks(1 << 20), Mode: restorev1.Mode_MODE_VERIFY}, MinOverlayLimitMiB},
		{"asked for", NewRestoreSpec{RecoveryPoint: disks(gib), Mode: restorev1.Mode_MODE_VERIFY, OverlayLimitMiB: 200}, 200},
		{"an IMAGE has no overlay", NewRestoreSpec{RecoveryPoint: disks(gib), Mode: restorev1.Mode_MODE_IMAGE, OverlayLimitMiB: 200}, 0},
	} {
		if got := NewRestore(tc.spec).OverlayLimitMib; got != tc.want {
			t.Errorf("%s: overlay limit %d MiB, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNewRestoreFillsDefaultsPerMode(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	rp := &restorev1.RecoveryPoint{Id: "rp-1", Tenant: "acme", Asset: "web-01"}
	tests := []struct {
		name string
		spec NewRestoreSpec
		ttl  time.Duration
		mem  int64
	}{
		{"virtualize", NewRestoreSpec{RecoveryPoint: rp, Mode: restorev1.Mode_MODE_VIRTUALIZE, Now: now}, DefaultTTLVirtualize, DefaultMemoryMiB},
		{"verify", NewRestoreSpec{RecoveryPoint: rp, Mode: restorev1.Mode_MODE_VERIFY, Now: now}, DefaultTTLVerify, DefaultMemoryMiB},
		{"asked", NewRestoreSpec{RecoveryPoint: rp, Mode: restorev1.Mode_MODE_VERIFY, Now: now, TTL: time.Minute, MemoryMiB: 512}, time.Minute, 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := NewRestore(tt.spec)
			if x.State != Pending || x.Tenant != "acme" || x.Asset != "web-01" || x.RecoveryPointId != "rp-1" {
				t.Fatalf("identity or state wrong: %v", x)
			}
			if got := time.Duration(x.TtlSeconds) * time.Second; got != tt.ttl {
				t.Errorf("ttl %s, want %s", got, tt.ttl)
			}
			if !x.ExpireTime.AsTime().Equal(now.Add(tt.ttl)) {
				t.Errorf("expire %s, want %s", x.ExpireTime.AsTime(), now.Add(tt.ttl))
			}
			if x.MemoryMib != tt.mem || x.Vcpus != DefaultVCPUs {
				t.Errorf("size %d vCPUs %d MiB", x.Vcpus, x.MemoryMib)
			}
			if x.Firmware != restorev1.Firmware_FIRMWARE_AUTO || x.Network.GetKind() != restorev1.NetworkKind_NETWORK_KIND_NONE {
				t.Errorf("firmware %s network %s", x.Firmware, x.Network.GetKind())
			}
		})
	}
}
