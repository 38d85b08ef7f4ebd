#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
# Runs as root on Debian 12 (as `make test` and `make demo` do).
set -euo pipefail

# package → a file it installs, to tell whether it is there.
declare -A want=(
	[qemu-utils]=/usr/bin/qemu-img
	# nbdinfo: the snapshot e2e test reads exports over TLS with a client not our own
	[libnbd-bin]=/usr/bin/nbdinfo
	[curl]=/usr/bin/curl
	[libvirt-clients]=/usr/bin/virt-xml-validate
	[libxml2-utils]=/usr/bin/xmllint
	# the test image (images/build-test-image.sh) and booting it
	[qemu-system-x86]=/usr/bin/qemu-system-x86_64
	[syslinux]=/usr/bin/syslinux
	[syslinux-common]=/usr/lib/syslinux/mbr/mbr.bin
	[mtools]=/usr/bin/mcopy
	[dosfstools]=/usr/sbin/mkfs.fat
	[e2fsprogs]=/usr/sbin/mkfs.ext4
	[fdisk]=/usr/sbin/sfdisk
	[busybox-static]=/bin/busybox
	[cpio]=/usr/bin/cpio
	[kmod]=/usr/sbin/depmod
	# libvirt and firmware for restores
	[libvirt-daemon-system]=/usr/sbin/libvirtd
	[ovmf]=/usr/share/OVMF/OVMF_CODE_4M.fd
	[iproute2]=/usr/sbin/ip
	# iSCSI exports: Debian's user-space target (no LIO here), libiscsi's
	# tools and QEMU's iSCSI driver for the tests' initiators
	[tgt]=/usr/sbin/tgtd
	[libiscsi-bin]=/usr/bin/iscsi-ls
	[qemu-block-extra]=/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so
	# file-level restore: the tests build each filesystem it reads, without
	# mounting (mkfs.xfs -p, mkntfs + ntfscp; FAT and ext4 above)
	[xfsprogs]=/usr/sbin/mkfs.xfs
	[ntfs-3g]=/usr/sbin/ntfscp
	# the browser console: noVNC from npm, and its test in headless Chromium
	[npm]=/usr/bin/npm
	[chromium]=/usr/bin/chromium
)
# --bench: what the benchmarks compare against, too (make bench-export times
# libguestfs's virt-ls, whose appliance boots a kernel of the host's).
if [ "${1:-}" = --bench ]; then
	want[libguestfs-tools]=/usr/bin/virt-ls
	want[linux-image-amd64]=/usr/share/doc/linux-image-amd64
fi
missing=()
for pkg in "${!want[@]}"; do
	[ -e "${want[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them with apt-get" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Restored runs a tgtd of its own per iSCSI export: the system-wide target
# Debian's tgt package starts (on systemd machines) is not ours to keep.
if [[ " ${missing[*]} " == *" tgt "* ]] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now tgt.service >/dev/null 2>&1 || true
fi
