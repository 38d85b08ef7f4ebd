package lifecycle

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
)

func TestEveryModeIsInTheModeTable(t *testing.T) {
	values := restorev1.Mode(0).Descriptor().Values()
	for i := 0; i < values.Len(); i++ {
		m := restorev1.Mode(values.Get(i).Number())
		if _, ok := modes[m]; !ok && m != restorev1.Mode_MODE_UNSPECIFIED {
			t.Errorf("mode %s is not in the table", m)
		}
	}
	for m, want := range map[restorev1.Mode]struct {
		needs hypervisor.Capability
		vm    bool
	}{
		restorev1.Mode_MODE_VIRTUALIZE: {hypervisor.Restores, true},
		restorev1.Mode_MODE_VERIFY:     {hypervisor.Restores, true},
		restorev1.Mode_MODE_EXPORT:     {hypervisor.Exports, false},
		restorev1.Mode_MODE_IMAGE:      {hypervisor.Images, false},
	} {
		if RestoreNeeds(m) != want.needs || HasVM(m) != want.vm {
			t.Errorf("%s: needs %s, VM %v", m, RestoreNeeds(m), HasVM(m))
		}
	}
	if DefaultTTL(restorev1.Mode_MODE_VERIFY) != DefaultTTLVerify || DefaultTTL(restorev1.Mode_MODE_IMAGE) != DefaultTTLImage || DefaultTTL(restorev1.Mode_MODE_EXPORT) != DefaultTTLVirtualize {
		t.Error("default leases")
	}
}
