#!/usr/bin/env bash
# Installs the Debian packages plinth builds and tests against, when any is missing.
# Safe to run repeatedly; needs root (or sudo) only when something must be installed.
set -euo pipefail

PACKAGES=(
  pkg-config        # virt-sys finds libvirt with it
  libvirt-dev       # the virt crate links libvirt
  libvirt-daemon    # libvirt drivers (the test driver runs in-process)
  libvirt-clients   # virsh, handy next to a dev region
  systemd           # systemd-analyze verifies the unit files
  qemu-utils        # qemu-img inspects imported images
  python3-pyftpdlib # the FTP server image-import tests start (run with /usr/bin/python3)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing: ${missing[*]}"
# A private archive directory: apt's cache cleaner races concurrent installs otherwise.
archives=$(mktemp -d /tmp/plinth-apt.XXXXXX)
mkdir -p "$archives/partial"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q -o DPkg::Lock::Timeout=600
$SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
  -o Dir::Cache::Archives="$archives" "${missing[@]}"
rm -rf "$archives"
