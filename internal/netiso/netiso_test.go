package netiso

import (
	"context"
	"testing"
)

func TestBridgeIsCreatedWithoutAddressesAndRemoved(t *testing.T) {
	ctx := context.Background()
	name := BridgeName("netiso-test")
	if len(name) > 15 {
		t.Fatalf("bridge name %q is longer than Linux allows", name)
	}
	t.Cleanup(func() { _ = Remove(ctx, name) })
	for i := 0; i < 2; i++ { // idempotent
		if err := Ensure(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	addrs, err := Addresses(ctx, name)
	if err != nil || len(addrs) != 0 {
		t.Fatalf("isolated bridge has host addresses %v (%v)", addrs, err)
	}
	for i := 0; i < 2; i++ {
		if err := Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if Exists(ctx, name) {
		t.Fatal("bridge still exists")
	}
}
