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
	TTL           time.Duration
	Firmware      restorev1.Firmware
	Network       *restorev1.Network
	Verify        *restorev1.VerifyOptions
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
