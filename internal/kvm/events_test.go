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

func TestOnlyAPauseOnAnIOErrorIsAFullDisk(t *testing.T) {
	for _, c := range []struct {
		event  libvirt.DomainEventType
		detail int32
		want   bool
	}{
		{libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedIoerror), true},
		{libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused), false}, // our pause, or an operator's
		{libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedMigrated), false},
		{libvirt.DomainEventResumed, 0, false},
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedFailed), false},
	} {
		got := pausedOnFullDisk(libvirt.DomainEventLifecycleMsg{Event: int32(c.event), Detail: c.detail}) != ""
		if got != c.want {
			t.Errorf("event %d detail %d: full disk %v, want %v", c.event, c.detail, got, c.want)
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
