#!/usr/bin/env bash
# Builds Restored's test image from Debian packages: a raw disk that boots
# from its own bootloader, with no loop devices and no mounts.
#
#   MBR (syslinux mbr.bin) → p1 FAT16, syslinux (BIOS) and syslinux.efi as
#                            \EFI\BOOT\BOOTX64.EFI (UEFI), Debian kernel + busybox initramfs
#                          → p2 ext4 root (busybox init, qemu-ga and its libraries)
#
# The initramfs loads the virtio and ext4 modules (crc32c_generic first),
# mounts /dev/vda2 and switches to it; init prints a marker on the serial
# console, starts qemu-ga on the org.qemu.guest_agent.0 port and gives a
# login prompt on ttyS0 and a shell on tty1.
#
# Usage: images/build-test-image.sh [OUT_DIR]   (default .cache/test-image)
# Prints the image's path. Cached: a second run with the same script and
# kernel returns at once.
set -euo pipefail
# Only the image's path goes to stdout; everything else to stderr.
exec 3>&1 1>&2

OUT="${1:-.cache/test-image}"
MARKER="RESTORED-TEST-IMAGE-BOOTED"
SCRIPT_HASH="$(sha256sum "$0" | cut -c1-12)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# Test packages run in parallel: one build at a time, the others wait for it.
exec 9>"$OUT/.lock"
flock 9

need() {
	local missing=()
	for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "build-test-image: missing ${missing[*]} (run scripts/install-deps.sh)" >&2
		exit 1
	fi
}
need apt-get dpkg-deb depmod sfdisk mkfs.fat syslinux mcopy mmd mkfs.ext4 cpio gzip busybox ldd

# The kernel package the image uses: whatever linux-image-amd64 points at.
KPKG="$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)"
if [ -z "$KPKG" ]; then
	apt-get update -qq
	KPKG="$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)"
fi
IMAGE="$OUT/restored-test-${KPKG#linux-image-}-$SCRIPT_HASH.raw"
if [ -s "$IMAGE" ]; then
	echo "$IMAGE" >&3
	exit 0
fi

WORK="$(mktemp -d "$OUT/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "build-test-image: building $(basename "$IMAGE") in $WORK"

# 1. Packages: downloaded as .deb files and unpacked, never installed.
DEBS="$OUT/debs"
mkdir -p "$DEBS"
(cd "$DEBS" && for p in "$KPKG" qemu-guest-agent syslinux-efi; do
	ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" 2>/dev/null >&2
done)
dpkg-deb -x "$(ls "$DEBS/${KPKG}"_*.deb)" "$WORK/kernel"
dpkg-deb -x "$(ls "$DEBS"/qemu-guest-agent_*.deb)" "$WORK/qga"
dpkg-deb -x "$(ls "$DEBS"/syslinux-efi_*.deb)" "$WORK/sefi"
KVER="$(ls "$WORK/kernel/lib/modules")"
depmod -b "$WORK/kernel" "$KVER"

# 2. Initramfs: busybox, the modules (dependencies first), /init.
INITRD="$WORK/initrd"
mkdir -p "$INITRD"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$INITRD/bin/busybox"
for app in sh mount umount insmod switch_root sleep cat echo mdev ls; do ln -s busybox "$INITRD/bin/$app"; done
MODDIR="$WORK/kernel/lib/modules/$KVER"
order=()
add_module() { # add a module after its dependencies, once
	local rel="$1" dep
	for done_mod in "${order[@]:-}"; do [ "$done_mod" = "$rel" ] && return; done
	for dep in $(sed -n "s|^$rel: *||p" "$MODDIR/modules.dep"); do add_module "$dep"; done
	order+=("$rel")
}
for m in crypto/crc32c_generic drivers/virtio/virtio_pci drivers/block/virtio_blk drivers/char/virtio_console fs/ext4/ext4; do
	add_module "kernel/$m.ko"
done
: > "$INITRD/lib/modules/order"
for rel in "${order[@]}"; do
	cp "$MODDIR/$rel" "$INITRD/lib/modules/"
	echo "$(basename "$rel")" >> "$INITRD/lib/modules/order"
done
cat > "$INITRD/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m; done
i=0
while [ ! -b /dev/vda2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if ! mount -t ext4 -o rw /dev/vda2 /newroot; then
	echo "initramfs: cannot mount /dev/vda2"; exec sh
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod +x "$INITRD/init"
(cd "$INITRD" && find . | cpio -o -H newc --quiet | gzip -9) > "$WORK/initrd.gz"

# 3. Root filesystem: busybox init, qemu-ga with the libraries it links.
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,var/run,usr/sbin}
cp /bin/busybox "$ROOT/bin/busybox"
"$ROOT/bin/busybox" --list-full | while read -r app; do
	[ "$app" = bin/busybox ] && continue
	mkdir -p "$ROOT/$(dirname "$app")"
	ln -sf /bin/busybox "$ROOT/$app"
done
QGA="$WORK/qga/usr/sbin/qemu-ga"
cp "$QGA" "$ROOT/usr/sbin/qemu-ga"
ldd "$QGA" | grep -o '/[^ ]*' | while read -r lib; do
	mkdir -p "$ROOT/$(dirname "$lib")"
	cp -L "$lib" "$ROOT/$lib"
done
cat > "$ROOT/etc/inittab" <<'TAB'
::sysinit:/etc/rc
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
TAB
cat > "$ROOT/etc/rc" <<RC
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
hostname restored-test
port=""
for p in /sys/class/virtio-ports/*; do
	[ "\$(cat \$p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/\$(basename \$p)
done
if [ -n "\$port" ]; then
	/usr/sbin/qemu-ga -m virtio-serial -p "\$port" -t /run -f /run/qemu-ga.pid -d && echo "qemu-ga started on \$port" > /dev/ttyS0
fi
echo "$MARKER" > /dev/ttyS0
RC
chmod +x "$ROOT/etc/rc"
echo "root::0:0:root:/root:/bin/sh" > "$ROOT/etc/passwd"
echo "root::0:" > "$ROOT/etc/group"
echo "restored-test" > "$ROOT/etc/hostname"
cat > "$ROOT/etc/os-release" <<OSR
NAME="Restored test image"
ID=restored-test
VERSION_ID=1
PRETTY_NAME="Restored test image 1 (Debian $KVER kernel, busybox)"
OSR

# 4. The disk: MBR, FAT boot partition with syslinux, ext4 root. No mounts.
P1_START=2048 P1_SECTORS=49152          # 24 MiB at 1 MiB
P2_START=$((P1_START + P1_SECTORS)) P2_SECTORS=65536 # 32 MiB
TOTAL=$((P2_START + P2_SECTORS))
DISK="$WORK/disk.raw"
truncate -s $((TOTAL * 512)) "$DISK"
sfdisk -q "$DISK" <<PT
label: dos
start=$P1_START, size=$P1_SECTORS, type=e, bootable
start=$P2_START, size=$P2_SECTORS, type=83
PT
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
mkfs.fat -F 16 -n BOOT --offset "$P1_START" "$DISK" $((P1_SECTORS / 2)) >/dev/null 2>&1
syslinux --offset $((P1_START * 512)) --install "$DISK"
# vga=0x311: the kernel switches to a 640x480 VESA framebuffer, as a
# distribution's graphical boot does, so the guest leaves the firmware's text
# mode and the agent's screen boot signal is exercised for real (BIOS only:
# under UEFI the kernel keeps the firmware's framebuffer).
# The same config serves BIOS syslinux (/syslinux.cfg) and UEFI
# (/EFI/BOOT/BOOTX64.EFI is syslinux.efi, which reads /EFI/BOOT/syslinux.cfg):
# one image boots under SeaBIOS and OVMF.
cat > "$WORK/syslinux.cfg" <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 1
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz vga=0x311 console=tty0 console=ttyS0,115200 quiet loglevel=3 panic=5
CFG
mcopy -i "$DISK@@$((P1_START * 512))" "$WORK/syslinux.cfg" ::syslinux.cfg
mmd -i "$DISK@@$((P1_START * 512))" ::EFI ::EFI/BOOT
mcopy -i "$DISK@@$((P1_START * 512))" "$WORK/sefi/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$DISK@@$((P1_START * 512))" /usr/lib/syslinux/modules/efi64/ldlinux.e64 ::EFI/BOOT/ldlinux.e64
mcopy -i "$DISK@@$((P1_START * 512))" "$WORK/syslinux.cfg" ::EFI/BOOT/syslinux.cfg
mcopy -i "$DISK@@$((P1_START * 512))" "$WORK/kernel/boot/vmlinuz-$KVER" ::vmlinuz
mcopy -i "$DISK@@$((P1_START * 512))" "$WORK/initrd.gz" ::initrd.gz
mkfs.ext4 -q -F -L root -E offset=$((P2_START * 512)) -d "$ROOT" "$DISK" $((P2_SECTORS / 2))k
chmod 0644 "$DISK"
mv "$DISK" "$IMAGE"
# Older builds (another script or kernel) are not needed any more.
find "$OUT" -maxdepth 1 -name 'restored-test-*.raw' ! -name "$(basename "$IMAGE")" -delete
echo "$IMAGE" >&3
