#!/usr/bin/env bash
# Build the Debian test VM used by tests/vm: a BIOS disk image with GRUB, the release's 6.1 cloud
# kernel pinned as the saved boot default, SSH for Ansible, no apt source (an air-gapped node), and
# beside it a flat apt repository holding the kernel the role installs: the newest 6.1 build of
# bookworm-security (a later ABI of the same series, which boots under software emulation; the
# 6.12 of bookworm-backports double-faults early under QEMU 7.2's TCG).
#
#   tools/vm/build-image.sh            # prints the image directory; a no-op when cached
#
# Output in $VM_CACHE_DIR (default ~/.cache/multicloud-interconnect/vm)/<key>/:
#   disk.raw     base image (tests boot a qcow2 overlay on top, the base never changes)
#   mirror/      Packages + .deb files of the target kernel, served to the VM during the test
#   id_ed25519   the SSH key root accepts
#   info.json    kernel releases and the root file system UUID
# <key> is derived from this script, so editing it rebuilds.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${VM_SUITE:-bookworm}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
# Where the upgrade target comes from (an apt sources line's URI and suite).
TARGET_SOURCE=${VM_TARGET_SOURCE:-http://deb.debian.org/debian-security $SUITE-security}
CACHE_ROOT=${VM_CACHE_DIR:-$HOME/.cache/multicloud-interconnect/vm}
KEY=$(cat "$0" | sha256sum | cut -c1-12)
OUT=$CACHE_ROOT/$KEY
DISK_MB=3072
PART_START=2048   # sectors: the gap before it holds GRUB's core image
ROOT_UUID=6d1c0a8e-4b5f-4c1e-9a57-6b3e2f1a0c01

if [[ -f $OUT/.complete ]]; then
  echo "$OUT"
  exit 0
fi
[[ $(id -u) == 0 ]] || { echo "build-image.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap mkfs.ext4 qemu-system-x86_64 qemu-img; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing; run 'make vm-deps'" >&2; exit 1; }
done

INCLUDE=systemd-sysv,udev,dbus,kmod,openssh-server,python3,python3-apt,grub-pc,linux-image-cloud-amd64,initramfs-tools,iproute2,apt-utils,ca-certificates,procps
# The slow part (debootstrap and the mirror download) is cached on its own, so changing the
# boot configuration below does not download everything again.
STAGE=$CACHE_ROOT/stage-$(echo "$SUITE $MIRROR $INCLUDE $TARGET_SOURCE" | sha256sum | cut -c1-12)
mkdir -p "$CACHE_ROOT"
WORK=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$ROOTFS/$m" && umount -l "$ROOTFS/$m"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[vm-build] $*" >&2; }

in_root() { chroot "$ROOTFS" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
mount_api() {
  mount -t proc proc "$ROOTFS/proc"; mount -t sysfs sys "$ROOTFS/sys"
  mount --bind /dev "$ROOTFS/dev"; mount --bind /dev/pts "$ROOTFS/dev/pts"
}
if [[ -f $STAGE/.complete ]]; then
  log "reuse $STAGE"
  cp -a "$STAGE/rootfs" "$ROOTFS"
  cp -a "$STAGE/mirror" "$WORK/mirror"
  mount_api
else
log "debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$INCLUDE" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
mount_api

log "target kernel from $TARGET_SOURCE into the local mirror"
echo "deb $TARGET_SOURCE main" >"$ROOTFS/etc/apt/sources.list.d/target.list"
in_root apt-get update -qq
in_root apt-get clean
in_root apt-get install -y -qq --download-only linux-image-cloud-amd64 >/dev/null
mkdir -p "$WORK/mirror"
mv "$ROOTFS"/var/cache/apt/archives/*.deb "$WORK/mirror/"
mkdir -p "$ROOTFS/tmp/mirror" && mount --bind "$WORK/mirror" "$ROOTFS/tmp/mirror"
in_root sh -c 'cd /tmp/mirror && apt-ftparchive packages . > Packages'
umount "$ROOTFS/tmp/mirror"
# An air-gapped node: no apt source until the role adds the site mirror.
rm -f "$ROOTFS/etc/apt/sources.list.d/target.list"
: >"$ROOTFS/etc/apt/sources.list"
in_root apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/*
for m in dev/pts dev proc sys; do umount -l "$ROOTFS/$m"; done
rm -rf "$STAGE" && mkdir -p "$STAGE" && cp -a "$ROOTFS" "$STAGE/rootfs" && cp -a "$WORK/mirror" "$STAGE/mirror"
touch "$STAGE/.complete"
mount_api
fi

log "configure boot, network and SSH"
BASE_RELEASE=$(basename "$(ls -d "$ROOTFS"/lib/modules/* | sort -V | tail -1)")
echo "mci-vm" >"$ROOTFS/etc/hostname"
echo "UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1" >"$ROOTFS/etc/fstab"
cat >"$ROOTFS/etc/systemd/network/10-dhcp.network" <<NET
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
NET
in_root systemctl enable systemd-networkd ssh >/dev/null 2>&1
in_root passwd -d root >/dev/null
ssh-keygen -q -t ed25519 -N '' -C mci-vm-test -f "$WORK/id_ed25519"
install -d -m 0700 "$ROOTFS/root/.ssh"
install -m 0600 "$WORK/id_ed25519.pub" "$ROOTFS/root/.ssh/authorized_keys"
sed -i 's/^#\?UseDNS.*/UseDNS no/' "$ROOTFS/etc/ssh/sshd_config"
cat >"$ROOTFS/etc/default/grub" <<GRUB
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 net.ifnames=1"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
GRUB
# First boot: let update-grub write the real grub.cfg from the running system, then pin the
# running kernel as the saved default, the way many fleets pin one. The test then proves the
# role moves the default: without that, the node would come back on this kernel.
cat >"$ROOTFS/usr/local/sbin/mci-first-boot" <<'FIRST'
#!/bin/sh
set -e
sed -i 's/^GRUB_DEFAULT=.*/GRUB_DEFAULT=saved/' /etc/default/grub
update-grub
uuid=$(findmnt -no UUID /)
grub-set-default "gnulinux-advanced-$uuid>gnulinux-$(uname -r)-advanced-$uuid"
grub-editenv list
systemctl disable mci-first-boot.service
echo MCI-FIRST-BOOT-DONE
systemctl poweroff
FIRST
chmod 0755 "$ROOTFS/usr/local/sbin/mci-first-boot"
cat >"$ROOTFS/etc/systemd/system/mci-first-boot.service" <<UNIT
[Unit]
Description=Write grub.cfg and pin the boot default (image build)
After=local-fs.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mci-first-boot
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable mci-first-boot.service >/dev/null 2>&1
# A hand-written grub.cfg for that first boot only.
install -d "$ROOTFS/boot/grub/i386-pc"
cp "$ROOTFS"/usr/lib/grub/i386-pc/*.mod "$ROOTFS"/usr/lib/grub/i386-pc/*.lst "$ROOTFS/boot/grub/i386-pc/"
cat >"$ROOTFS/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry "first boot $BASE_RELEASE" {
  insmod ext2
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  linux /boot/vmlinuz-$BASE_RELEASE root=UUID=$ROOT_UUID ro console=ttyS0,115200n8
  initrd /boot/initrd.img-$BASE_RELEASE
}
CFG
cat >"$WORK/early.cfg" <<EARLY
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
EARLY
cp "$WORK/early.cfg" "$ROOTFS/tmp/early.cfg"
in_root grub-mkimage -O i386-pc -o /tmp/core.img -c /tmp/early.cfg -p /boot/grub \
  biosdisk part_msdos ext2 search search_fs_uuid normal configfile linux echo serial terminal
cp "$ROOTFS/tmp/core.img" "$ROOTFS/usr/lib/grub/i386-pc/boot.img" "$WORK/"
rm -f "$ROOTFS/tmp/core.img" "$ROOTFS/tmp/early.cfg"
for m in dev/pts dev proc sys; do umount -l "$ROOTFS/$m"; done

log "assemble the disk"
PART_MB=$((DISK_MB - 1))
mkfs.ext4 -q -F -U "$ROOT_UUID" -L root -d "$ROOTFS" "$WORK/root.ext4" "${PART_MB}M"
truncate -s "${DISK_MB}M" "$WORK/disk.raw"
dd if="$WORK/root.ext4" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
python3 "$HERE/mbr.py" "$WORK/disk.raw" "$WORK/boot.img" "$WORK/core.img" "$PART_START" $((PART_MB * 2048))

log "first boot (writes grub.cfg, pins the default, powers off)"
ACCEL=$("$HERE/accel.sh")
timeout 900 qemu-system-x86_64 -accel "$ACCEL" $([[ $ACCEL == kvm ]] && echo -cpu host) -m 1024 -smp 2 -nographic -no-reboot \
  -drive file="$WORK/disk.raw",format=raw,if=virtio -nic none \
  -serial file:"$WORK/first-boot.log" -monitor none </dev/null >/dev/null 2>&1 || true
grep -q MCI-FIRST-BOOT-DONE "$WORK/first-boot.log" || { tail -40 "$WORK/first-boot.log" >&2; log "first boot failed"; exit 1; }

TARGET_RELEASE=$(ls "$WORK/mirror" | sed -n 's/^linux-image-\([0-9].*-cloud-amd64\)_.*/\1/p' | sort -V | tail -1)
cat >"$WORK/info.json" <<JSON
{"suite": "$SUITE", "base_release": "$BASE_RELEASE", "target_release": "$TARGET_RELEASE", "root_uuid": "$ROOT_UUID", "accel_at_build": "$ACCEL"}
JSON
mkdir -p "$OUT"
mv "$WORK/disk.raw" "$WORK/mirror" "$WORK/id_ed25519" "$WORK/id_ed25519.pub" "$WORK/info.json" "$WORK/first-boot.log" "$OUT/"
touch "$OUT/.complete"
log "built $OUT (base $BASE_RELEASE, target $TARGET_RELEASE, accel $ACCEL)"
echo "$OUT"
