package kvm

import (
	"testing"

	"github.com/digitalocean/go-libvirt"
)

func TestOnlyStopsNobodyAskedForAreUnexpected(t *testing.T) {
	for _, c := range []struct {
		event  libvirt.DomainEventType
		detail int32
		want   bool
	}{
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedFailed), true},
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedCrashed), true},
		{libvirt.DomainEventCrashed, 0, true},
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedDestroyed), false}, // our teardown
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedShutdown), false},  // the guest powered off
		{libvirt.DomainEventStarted, 0, false},
		{libvirt.DomainEventUndefined, 0, false},
	} {
		got := unexpectedStop(libvirt.DomainEventLifecycleMsg{Event: int32(c.event), Detail: c.detail}) != ""
		if got != c.want {
			t.Errorf("event %d detail %d: unexpected %v, want %v", c.event, c.detail, got, c.want)
		}
	}
}

func TestCallNamesLeaveTheNamesOut(t *testing.T) {
	for what, want := range map[string]string{
		"look up checkpoint restored-ckpt-42": "look up checkpoint",
		"begin backup of restored-01a2":       "begin backup of",
		"size of disk0":                       "size of",
		"define":                              "define",
		"restored-01a2":                       "other",
	} {
		if got := callName(what); got != want {
			t.Errorf("callName(%q) = %q, want %q", what, got, want)
		}
	}
}
