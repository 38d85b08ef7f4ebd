#!/usr/bin/env bash
# Starts virtlogd and libvirtd when they are not running (this machine has no
# systemd). Never starts libvirt's `default` NAT network: its autostart link is
# removed before libvirtd starts.
set -euo pipefail

SOCK=/var/run/libvirt/libvirt-sock
rm -f /etc/libvirt/qemu/networks/autostart/default.xml

# Without udev, /dev/kvm stays root-only. libvirt then finds KVM in QEMU's
# capabilities but not usable by the QEMU user, throws its capability cache
# away on every domain definition and re-probes QEMU (80 s here). Give
# /dev/kvm the permissions Debian's udev rules give it (root:kvm 0660).
# Whether KVM guests actually run is the agent's own decision.
if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then
	echo "start-libvirt: /dev/kvm -> root:kvm 0660 (as udev would)"
	chgrp kvm /dev/kvm
	chmod 0660 /dev/kvm
fi

if ! pgrep -x virtlogd >/dev/null; then
	echo "start-libvirt: starting virtlogd"
	virtlogd -d
fi
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
	echo "start-libvirt: starting libvirtd"
	pgrep -x libvirtd >/dev/null || libvirtd -d
	for _ in $(seq 1 100); do
		virsh -c qemu:///system version >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
	echo "start-libvirt: libvirtd does not answer on $SOCK" >&2
	exit 1
fi
if virsh -c qemu:///system net-list --name 2>/dev/null | grep -qx default; then
	echo "start-libvirt: libvirt's default NAT network is running; this project never starts it" >&2
fi
