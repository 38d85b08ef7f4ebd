package agent

import (
	"context"
	"strings"
	"testing"
)

func TestAcceleratorExplainsItsChoice(t *testing.T) {
	for _, forced := range []string{"tcg", "kvm"} {
		if accel, note := Accelerator(context.Background(), "qemu-system-x86_64", t.TempDir(), forced); accel != forced || !strings.Contains(note, "forced") {
			t.Fatalf("forced %s: %s %q", forced, accel, note)
		}
	}
	accel, note := Accelerator(context.Background(), "qemu-system-x86_64", t.TempDir(), "auto")
	if (accel != "kvm" && accel != "tcg") || note == "" {
		t.Fatalf("auto: %q %q", accel, note)
	}
	t.Logf("this host: %s (%s)", accel, note)
}
