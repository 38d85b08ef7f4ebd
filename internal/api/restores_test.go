package api

import (
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCreateRequestsAreValidatedWithActionableMessages(t *testing.T) {
	ok := func() *restorev1.CreateRestoreRequest {
		return &restorev1.CreateRestoreRequest{RecoveryPointId: "rp-1", Mode: restorev1.Mode_MODE_VIRTUALIZE, RequestId: "r-1"}
	}
	tests := []struct {
		name string
		edit func(*restorev1.CreateRestoreRequest)
		want string // "" accepts
	}{
		{"defaults", func(*restorev1.CreateRestoreRequest) {}, ""},
		{"no request id", func(r *restorev1.CreateRestoreRequest) { r.RequestId = "" }, "request_id is required"},
		{"no recovery point", func(r *restorev1.CreateRestoreRequest) { r.RecoveryPointId = "" }, "recovery_point_id is required"},
		{"no mode", func(r *restorev1.CreateRestoreRequest) { r.Mode = 0 }, "mode is required"},
		{"unknown mode", func(r *restorev1.CreateRestoreRequest) { r.Mode = 99 }, "unknown value 99"},
		{"too many vCPUs", func(r *restorev1.CreateRestoreRequest) { r.Vcpus = 65 }, "vcpus must be between 1 and 64"},
		{"too little memory", func(r *restorev1.CreateRestoreRequest) { r.MemoryMib = 64 }, "memory_mib must be between 96"},
		{"negative lease", func(r *restorev1.CreateRestoreRequest) { r.TtlSeconds = -1 }, "ttl_seconds must be positive"},
		{"an overlay limit", func(r *restorev1.CreateRestoreRequest) { r.OverlayLimitMib = 4096 }, ""},
		{"an overlay limit too small", func(r *restorev1.CreateRestoreRequest) { r.OverlayLimitMib = 63 }, "overlay_limit_mib must be between 64"},
		{"a negative overlay limit", func(r *restorev1.CreateRestoreRequest) { r.OverlayLimitMib = -1 }, "overlay_limit_mib must be between 64"},
		{"an overlay limit on an IMAGE", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.OverlayLimitMib = restorev1.Mode_MODE_IMAGE, 100
			r.Image = &restorev1.ImageOptions{Format: restorev1.ImageFormat_IMAGE_FORMAT_QCOW2}
		}, "an IMAGE restore has no overlay"},
		{"bridged without a bridge", func(r *restorev1.CreateRestoreRequest) {
			r.Network = &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_BRIDGED}
		}, "network.bridge must name"},
		{"a bridge without bridging", func(r *restorev1.CreateRestoreRequest) { r.Network = &restorev1.Network{Bridge: "br0"} }, "only allowed with network.kind BRIDGED"},
		{"verify options on a VIRTUALIZE", func(r *restorev1.CreateRestoreRequest) { r.Verify = &restorev1.VerifyOptions{} }, "only allowed with mode VERIFY"},
		{"export options on a VIRTUALIZE", func(r *restorev1.CreateRestoreRequest) { r.Export = &restorev1.ExportOptions{ReadWrite: true} }, "export options are for EXPORT restores"},
		{"an export with a network", func(r *restorev1.CreateRestoreRequest) {
			r.Mode = restorev1.Mode_MODE_EXPORT
			r.Network = &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_ISOLATED}
		}, "an EXPORT restore has no VM and so no network"},
		{"an export", func(r *restorev1.CreateRestoreRequest) { r.Mode = restorev1.Mode_MODE_EXPORT }, ""},
		{"an export with vCPUs", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.Vcpus = restorev1.Mode_MODE_EXPORT, 1
		}, "an EXPORT restore has no VM: leave vcpus and memory_mib out"},
		{"an image", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.Image = restorev1.Mode_MODE_IMAGE, &restorev1.ImageOptions{Format: restorev1.ImageFormat_IMAGE_FORMAT_VHDX}
		}, ""},
		{"an image without a format", func(r *restorev1.CreateRestoreRequest) { r.Mode = restorev1.Mode_MODE_IMAGE }, "an IMAGE restore needs image.format"},
		{"an image of an unknown format", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.Image = restorev1.Mode_MODE_IMAGE, &restorev1.ImageOptions{Format: 42}
		}, "an IMAGE restore needs image.format"},
		{"image options on an export", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.Image = restorev1.Mode_MODE_EXPORT, &restorev1.ImageOptions{Format: restorev1.ImageFormat_IMAGE_FORMAT_QCOW2}
		}, "image options are for IMAGE restores"},
		{"an image with a network", func(r *restorev1.CreateRestoreRequest) {
			r.Mode, r.Image = restorev1.Mode_MODE_IMAGE, &restorev1.ImageOptions{Format: restorev1.ImageFormat_IMAGE_FORMAT_QCOW2}
			r.Network = &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_ISOLATED}
		}, "an IMAGE restore has no VM and so no network"},
		{"a control character", func(r *restorev1.CreateRestoreRequest) { r.RequestId = "a\x00b" }, "control or invalid character"},
		{"a name too long", func(r *restorev1.CreateRestoreRequest) { r.RecoveryPointId = strings.Repeat("x", 254) }, "at most 253"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.edit(in)
			out, err := normalizeCreate(in)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				vcpus, memory := int32(lifecycle.DefaultVCPUs), int64(lifecycle.DefaultMemoryMiB)
				if !lifecycle.HasVM(out.Mode) {
					vcpus, memory = 0, 0
				}
				if out.Vcpus != vcpus || out.MemoryMib != memory ||
					time.Duration(out.TtlSeconds)*time.Second != lifecycle.DefaultTTL(out.Mode) ||
					out.Firmware != restorev1.Firmware_FIRMWARE_AUTO || out.Network.GetKind() != restorev1.NetworkKind_NETWORK_KIND_NONE {
					t.Fatalf("defaults not filled: %v", out)
				}
				if in.Vcpus != 0 {
					t.Fatal("the caller's request was changed")
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestTheSameBodyHashesTheSameWhateverTheDefaultsSpelledOut(t *testing.T) {
	a, _ := normalizeCreate(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-1", Mode: restorev1.Mode_MODE_VERIFY, RequestId: "r"})
	b, _ := normalizeCreate(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-1", Mode: restorev1.Mode_MODE_VERIFY, RequestId: "r",
		Vcpus: lifecycle.DefaultVCPUs, MemoryMib: lifecycle.DefaultMemoryMiB, TtlSeconds: int64(lifecycle.DefaultTTLVerify / time.Second)})
	c, _ := normalizeCreate(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-1", Mode: restorev1.Mode_MODE_VERIFY, RequestId: "r", Vcpus: 2})
	if string(bodyHash(a)) != string(bodyHash(b)) {
		t.Fatal("a request with its defaults spelled out is another body")
	}
	if string(bodyHash(a)) == string(bodyHash(c)) {
		t.Fatal("a request asking for 2 vCPUs is the same body as one asking for the default")
	}
}
