package lifecycle

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestFitChecksStateDrainHoldingAndRoom(t *testing.T) {
	ready := func(id string, vcpus int32, mem int64) *restorev1.Host {
		return &restorev1.Host{Id: id, State: restorev1.HostState_HOST_STATE_READY, Capacity: &restorev1.Capacity{Vcpus: vcpus, MemoryMib: mem}}
	}
	down := ready("h1", 4, 1024)
	down.State = restorev1.HostState_HOST_STATE_DOWN
	drained := ready("h1", 4, 1024)
	drained.Drained = true
	snapshotsOnly := ready("h1", 4, 1024)
	snapshotsOnly.Capabilities = []restorev1.HostCapability{restorev1.HostCapability_HOST_CAPABILITY_SNAPSHOTS}
	rp := &restorev1.RecoveryPoint{Id: "rp", HostIds: []string{"h1"}}
	x := &restorev1.Restore{Vcpus: 2, MemoryMib: 512, OverlayLimitMib: 1000}
	disk := func(mib int64) *restorev1.Host {
		h := ready("h1", 4, 1024)
		h.Capacity.DiskMib = mib
		return h
	}
	tests := []struct {
		name      string
		h         *restorev1.Host
		allocated *restorev1.Capacity
		rp        *restorev1.RecoveryPoint
		want      Misfit
	}{
		{"fits", ready("h1", 4, 1024), &restorev1.Capacity{}, rp, Fits},
		{"fits exactly", ready("h1", 4, 1024), &restorev1.Capacity{Vcpus: 2, MemoryMib: 512}, rp, Fits},
		{"not registered", nil, nil, rp, NotRegistered},
		{"down", down, nil, rp, HostDownNow},
		{"drained", drained, nil, rp, Drained},
		{"does not hold it", ready("h2", 4, 1024), nil, rp, NoRecoveryPoint},
		{"unknown recovery point", ready("h1", 4, 1024), nil, nil, NoRecoveryPoint},
		{"vCPUs taken", ready("h1", 4, 1024), &restorev1.Capacity{Vcpus: 3}, rp, TooSmall},
		{"memory taken", ready("h1", 4, 1024), &restorev1.Capacity{MemoryMib: 513}, rp, TooSmall},
		{"nil allocation is none", ready("h1", 2, 512), nil, rp, Fits},
		{"its hypervisor cannot boot restores", snapshotsOnly, nil, rp, CannotRestore},
		{"room for the overlay", disk(1000), &restorev1.Capacity{}, rp, Fits},
		{"the overlay could outgrow the work dir", disk(999), &restorev1.Capacity{}, rp, NoDiskRoom},
		{"other overlays took the room", disk(5000), &restorev1.Capacity{DiskMib: 4001}, rp, NoDiskRoom},
		{"a host that reports no disk is not held to one", disk(0), &restorev1.Capacity{DiskMib: 9000}, rp, Fits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fit(tt.h, tt.allocated, tt.rp, x, ""); got != tt.want {
				t.Errorf("Fit = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAllocateAddsAndReturnsDemand(t *testing.T) {
	a := &restorev1.Capacity{}
	x := &restorev1.Restore{Vcpus: 2, MemoryMib: 300, OverlayLimitMib: 2048}
	Allocate(a, x, 1)
	Allocate(a, x, 1)
	Allocate(a, x, -1)
	if a.Vcpus != 2 || a.MemoryMib != 300 || a.DiskMib != 2048 {
		t.Fatalf("allocation %v, want 2 vCPUs 300 MiB memory 2048 MiB disk", a)
	}
	free := Free(&restorev1.Host{Capacity: &restorev1.Capacity{Vcpus: 4, MemoryMib: 1000, DiskMib: 10000}}, a)
	if free.Vcpus != 2 || free.MemoryMib != 700 || free.DiskMib != 7952 {
		t.Fatalf("free %v, want 2 vCPUs 700 MiB memory 7952 MiB disk", free)
	}
}

func TestFitOffersOnlyAllowedBridgesAndKeepsALabOnOneHost(t *testing.T) {
	h := &restorev1.Host{Id: "h1", State: restorev1.HostState_HOST_STATE_READY, Capacity: &restorev1.Capacity{Vcpus: 8, MemoryMib: 8192},
		Bridges: []*restorev1.HostBridge{{Name: "br-acme", Tenants: []string{"acme"}}, {Name: "br-all", AllTenants: true}}}
	rp := &restorev1.RecoveryPoint{Id: "rp", HostIds: []string{"h1"}}
	bridged := func(tenant, bridge string) *restorev1.Restore {
		return &restorev1.Restore{Tenant: tenant, Vcpus: 1, MemoryMib: 256, Network: &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_BRIDGED, Bridge: bridge}}
	}
	lab := &restorev1.Restore{Tenant: "acme", Vcpus: 1, MemoryMib: 256, Network: &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_ISOLATED, Lab: "erp"}}
	for _, tt := range []struct {
		name    string
		x       *restorev1.Restore
		labHost string
		want    Misfit
	}{
		{"the tenant's bridge", bridged("acme", "br-acme"), "", Fits},
		{"a bridge for every tenant", bridged("globex", "br-all"), "", Fits},
		{"another tenant's bridge", bridged("globex", "br-acme"), "", BridgeNotOffered},
		{"a bridge the host does not offer", bridged("acme", "br-prod"), "", BridgeNotOffered},
		{"a lab that runs nowhere yet", lab, "", Fits},
		{"a lab that runs here", lab, "h1", Fits},
		{"a lab that runs elsewhere", lab, "h2", LabElsewhere},
	} {
		if got := Fit(h, nil, rp, tt.x, tt.labHost); got != tt.want {
			t.Errorf("%s: Fit = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Lab(lab) != "acme/erp" || Lab(bridged("acme", "br-acme")) != "" {
		t.Fatalf("labs: %q %q", Lab(lab), Lab(bridged("acme", "br-acme")))
	}
}
