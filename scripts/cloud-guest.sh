#!/bin/bash
# Builds the small, self-booting Debian 12 cloud guest the network tests boot through plinth
# (tests/network_guest.rs), so that a REAL cloud-init applies plinth's NoCloud seed (password,
# network-config v2) and a real guest answers on its EIPs. One qcow2 file: MBR partition table,
# GRUB (i386-pc, BIOS/SeaBIOS) in the MBR gap, one ext4 root holding linux-image-cloud-amd64 +
# initramfs, systemd, udev, cloud-init 22.4, systemd-networkd and ping. Built offline from this
# machine's own apt sources; the tests cache it outside the clone (tests/common/cloud_guest.rs)
# and rebuild it when this script changes. Started from ../shared/recipes/cloud-guest.sh.
#
#   usage: cloud-guest.sh OUTPUT.qcow2   (as root; on 2 busy cores about 2 min)
#   env:   CG_SIZE=2G (virtual disk size)  CG_COMPRESS=1 (qcow2 -c, the default here)
#          CG_KEEP_WORK=1 (keep rootfs + raw disk)  CG_EXTRA=pkg1,pkg2 (more packages)
#
# linux-image-cloud-amd64 (Debian 12) has no AHCI driver (CONFIG_SATA_AHCI unset): a seed on
# q35's SATA CD-ROM is invisible to it, cloud-init falls back to DataSourceNone and root stays
# locked. plinth attaches CD-ROMs on virtio-scsi for that reason.
#
# No loop devices, no mounts of the image: the file system is written by mkfs.ext4 -d at the
# partition's offset, GRUB's boot.img/core.img are placed with dd (boot.img's and diskboot's
# built-in sector numbers already point at sector 1/2, so grub-bios-setup is not needed).
# Packages come through the host's own apt sources (passed to mmdebstrap as files), and every
# trace of the host (sources, apt options, resolv.conf, hostname) is scrubbed.
set -euo pipefail

SUITE=bookworm
KERNEL=linux-image-cloud-amd64
# grub-pc-bin only to make core.img at build time (purged again below); systemd-resolved so
# that network-config nameservers reach /etc/resolv.conf under the networkd renderer.
# e2fsprogs + cloud-guest-utils: cloud-init's resizefs/growpart (without resize2fs the init
# stage fails and "cloud-init status" says error; growpart grows / when the overlay is bigger).
PKGS=systemd-sysv,udev,dbus,passwd,iproute2,systemd-resolved,e2fsprogs,cloud-guest-utils
# iputils-ping: the tests ping out of the guest (and spoof a source address with -I).
PKGS=$PKGS,iputils-ping,$KERNEL,cloud-init,grub-pc-bin

# --- mmdebstrap customize hook (re-invoked as "$0 __customize ROOT"; mmdebstrap's chroot
# mounts /proc, /sys and /dev are in place). There is no apt inside (variant essential).
customize() {
  local R=$1 kver
  kver=$(cd "$R/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//')
  [ "$(echo "$kver" | wc -l)" = 1 ] || { echo "expected one kernel, got: $kver" >&2; exit 1; }
  echo localhost > "$R/etc/hostname"             # cloud-init sets the instance's own name
  chmod 644 "$R/etc/hostname"                    # (mmdebstrap copied the host's, mode and all)
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
  # mmdebstrap copied the host's resolv.conf; systemd-resolved's postinst kept it as a backup.
  rm -f "$R/etc/.resolv.conf.systemd-resolved.bak"
  if [ ! -L "$R/etc/resolv.conf" ]; then : > "$R/etc/resolv.conf"; fi
  # cloud-init renders network-config v2 for systemd-networkd (no ifupdown, no netplan
  # installed); networkd must be enabled or the rendered .network files are never applied.
  chroot "$R" systemctl enable systemd-networkd.service
  # Without this, network-online.target (which cloud-config.service, and so the password,
  # waits for) waits up to systemd's default 2 min when a NIC has no carrier or the guest has
  # no NIC at all; with it a NIC-less boot pays 20 s.
  mkdir -p "$R/etc/systemd/system/systemd-networkd-wait-online.service.d"
  cat > "$R/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20
EOF
  # Only the NoCloud seed (cidata) is looked for; no network probing of metadata services.
  echo 'datasource_list: [ NoCloud, None ]' > "$R/etc/cloud/cloud.cfg.d/90_dpkg.cfg"
  # cloud-init's Debian default (en_US.UTF-8) runs locale-gen at first boot: ~10-30 s of TCG.
  # No sshd in this image: no host keys to make (ssh-keygen is absent; RSA costs TCG seconds).
  printf 'locale: C.UTF-8\nssh_genkeytypes: []\n' > "$R/etc/cloud/cloud.cfg.d/80_test_image.cfg"

  # GRUB for BIOS: modules under /boot/grub, a core.img that finds the root by UUID.
  mkdir -p "$R/boot/grub/i386-pc"
  cp "$R"/usr/lib/grub/i386-pc/*.mod "$R"/usr/lib/grub/i386-pc/*.lst \
     "$R/usr/lib/grub/i386-pc/boot.img" "$R/boot/grub/i386-pc/"
  printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$CG_UUID" > "$R/boot/grub/load.cfg"
  chroot "$R" grub-mkimage -O i386-pc -d /usr/lib/grub/i386-pc -c /boot/grub/load.cfg \
    -p /boot/grub -o /boot/grub/i386-pc/core.img biosdisk part_msdos ext2 search_fs_uuid
  cat > "$R/boot/grub/grub.cfg" <<EOF
set default=0
set timeout=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
menuentry 'Debian GNU/Linux ($kver)' {
  linux /boot/vmlinuz-$kver root=UUID=$CG_UUID ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img-$kver
}
EOF
  # grub-mkimage was only needed at build time. dpkg INSIDE the chroot: an outer
  # "APT_CONFIG=\$MMDEBSTRAP_APT_CONFIG apt-get purge" without -oDPkg::Chroot-Directory plans
  # against the chroot's status but runs dpkg on the HOST (it removed host libraries here).
  chroot "$R" dpkg --purge grub-pc-bin grub-common
}

if [ "${1:-}" = __customize ]; then customize "$2"; exit 0; fi

[ $# = 1 ] || { echo "usage: $0 OUTPUT.qcow2" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: run as root (mmdebstrap --mode=root, chroot)" >&2; exit 1; }
OUT=$(realpath -m "$1")
SIZE=${CG_SIZE:-2G}
t0=$(date +%s)

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v qemu-img >/dev/null || need+=(qemu-utils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}"
fi

# The host's apt sources, as files (mmdebstrap pastes each into the chroot), and the apt
# options that make them usable here (a snapshot mirror needs Check-Valid-Until false).
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -f "$f" ] && grep -qvE '^\s*(#|$)' "$f"; then sources+=("$f"); fi
done
[ ${#sources[@]} -gt 0 ] || { echo "$0: no apt sources on this host" >&2; exit 1; }
aptopts=()
for key in Acquire::Check-Valid-Until Acquire::Check-Date Acquire::http::Proxy Acquire::https::Proxy; do
  v=; eval "$(apt-config shell v "$key")"
  if [ -n "$v" ]; then aptopts+=("--aptopt=$key \"$v\""); fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloud-guest.XXXXXX")
chmod 755 "$WORK"                   # apt's _apt user downloads into it
cleanup() { [ "${CG_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
export CG_UUID
CG_UUID=$(cat /proc/sys/kernel/random/uuid)
SELF=$(realpath "$0")

echo "== mmdebstrap ($SUITE) into $WORK/root"
pkgs=$PKGS${CG_EXTRA:+,$CG_EXTRA}
# merged-usr hook: installs usr-is-merged; otherwise apt picks usrmerge, which drags in perl.
nice -n 19 timeout 1800 mmdebstrap --mode=root --variant=essential --include="$pkgs" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  "${aptopts[@]}" \
  --essential-hook="echo 'UUID=$CG_UUID / ext4 errors=remount-ro 0 1' > \"\$1/etc/fstab\"" \
  --customize-hook="\"$SELF\" __customize \"\$1\"" \
  "$SUITE" "$WORK/root" "${sources[@]}"
t1=$(date +%s)

# Scrub what only the build host needed (the mirror's name, its apt options).
rm -f "$WORK/root/etc/apt/sources.list" "$WORK/root"/etc/apt/sources.list.d/* \
      "$WORK/root/etc/apt/apt.conf.d/99mmdebstrap"
: > "$WORK/root/etc/machine-id"     # systemd makes a fresh one at first boot

echo "== disk image"
bytes=$(numfmt --from=iec "$SIZE")
off=$((2048 * 512))
truncate -s "$bytes" "$WORK/disk.raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$WORK/disk.raw"
nice -n 19 timeout 900 mkfs.ext4 -q -F -L cloudroot -U "$CG_UUID" -E offset=$off \
  -d "$WORK/root" "$WORK/disk.raw" $(( (bytes - off) / 1024 ))k
core=$WORK/root/boot/grub/i386-pc/core.img
[ "$(stat -c %s "$core")" -lt $(( off - 512 )) ] || { echo "core.img too big" >&2; exit 1; }
dd if="$WORK/root/boot/grub/i386-pc/boot.img" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$core" of="$WORK/disk.raw" bs=512 seek=1 conv=notrunc status=none
conv=()
if [ "${CG_COMPRESS:-1}" = 1 ]; then conv=(-c); fi
nice -n 19 timeout 900 qemu-img convert "${conv[@]}" -f raw -O qcow2 "$WORK/disk.raw" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
t2=$(date +%s)
echo "rootfs: $(du -sh "$WORK/root" | cut -f1)  image: $(du -h "$OUT" | cut -f1) ($OUT)"
echo "times: mmdebstrap $((t1 - t0))s, disk $((t2 - t1))s, total $((t2 - t0))s"
