package lifecycle

import (
	"cmp"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Restore defaults: what a request or a policy that leaves them out gets.
const (
	DefaultVCPUs         = 1
	DefaultMemoryMiB     = 256
	DefaultTTLVirtualize = 4 * time.Hour
	DefaultTTLVerify     = time.Hour
	DefaultTTLImage      = time.Hour
)

// Overlay growth limits, in MiB.
const (
	MinOverlayLimitMiB     = 64
	MaxOverlayLimitMiB     = 16 << 20
	DefaultOverlayLimitMiB = 10 << 10
)

// DefaultOverlayLimit is the growth limit of an overlay of rp when none is
// asked for: the size of its disks (an overlay holds at most every block
// of them once), at most DefaultOverlayLimitMiB, at least
// MinOverlayLimitMiB.
func DefaultOverlayLimit(rp *restorev1.RecoveryPoint) int64 {
	var size int64
	for _, d := range rp.GetDisks() {
		size += d.VirtualSize
	}
	mib := (size + 1<<20 - 1) >> 20
	return min(max(mib, MinOverlayLimitMiB), DefaultOverlayLimitMiB)
}

// NewRestoreSpec is what a new restore is made of. Zero fields take the
// defaults above (firmware AUTO, no network).
type NewRestoreSpec struct {
	// ID is the new restore's id (made before raft).
	ID string
	// RecoveryPoint is what it boots; its tenant and asset are the restore's.
	RecoveryPoint *restorev1.RecoveryPoint
	Mode          restorev1.Mode
	VCPUs         int32
	MemoryMiB     int64
	// OverlayLimitMiB is how far its overlay may grow (0:
	// DefaultOverlayLimit of the recovery point).
	OverlayLimitMiB int64
	TTL             time.Duration
	Firmware        restorev1.Firmware
	Network         *restorev1.Network
	Verify          *restorev1.VerifyOptions
	// Export is an EXPORT restore's options.
	Export *restorev1.ExportOptions
	// Image is an IMAGE restore's options.
	Image *restorev1.ImageOptions
	// RequestID is the client's idempotency key.
	RequestID string
	// PolicyID names the verification policy that starts it.
	PolicyID string
	// Reason is the PENDING state's reason.
	Reason string
	Now    time.Time
}

// NewRestore makes a PENDING restore from spec: the one constructor used by
// the API and by verification policies.
func NewRestore(spec NewRestoreSpec) *restorev1.Restore {
	ttl := cmp.Or(spec.TTL, DefaultTTL(spec.Mode))
	network := &restorev1.Network{}
	if spec.Network != nil {
		network = proto.Clone(spec.Network).(*restorev1.Network)
	}
	if network.Kind == restorev1.NetworkKind_NETWORK_KIND_UNSPECIFIED {
		network.Kind = restorev1.NetworkKind_NETWORK_KIND_NONE
	}
	vcpus, memory := cmp.Or(spec.VCPUs, DefaultVCPUs), cmp.Or(spec.MemoryMiB, DefaultMemoryMiB)
	if !HasVM(spec.Mode) {
		vcpus, memory = 0, 0 // no VM: no VM capacity of its host
	}
	overlay := cmp.Or(spec.OverlayLimitMiB, DefaultOverlayLimit(spec.RecoveryPoint))
	if !HasOverlay(spec.Mode) {
		overlay = 0
	}
	firmware := spec.Firmware
	if firmware == restorev1.Firmware_FIRMWARE_UNSPECIFIED {
		firmware = restorev1.Firmware_FIRMWARE_AUTO
	}
	return &restorev1.Restore{
		Id:              spec.ID,
		Tenant:          spec.RecoveryPoint.GetTenant(),
		RecoveryPointId: spec.RecoveryPoint.GetId(),
		Asset:           spec.RecoveryPoint.GetAsset(),
		Mode:            spec.Mode,
		Vcpus:           vcpus,
		MemoryMib:       memory,
		OverlayLimitMib: overlay,
		Network:         network,
		Firmware:        firmware,
		TtlSeconds:      int64(ttl / time.Second),
		RequestId:       spec.RequestID,
		Verify:          spec.Verify,
		ExportOptions:   spec.Export,
		ImageOptions:    spec.Image,
		PolicyId:        spec.PolicyID,
		State:           Pending,
		StateReason:     cmp.Or(spec.Reason, "waiting for the scheduler to pick a host"),
		CreateTime:      timestamppb.New(spec.Now),
		ExpireTime:      timestamppb.New(spec.Now.Add(ttl)),
	}
}
