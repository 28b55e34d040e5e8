#!/usr/bin/env bash
# Installs the Debian packages plinth builds and tests against, when any is missing.
# Safe to run repeatedly; needs root (or sudo) only when something must be installed.
set -euo pipefail

PACKAGES=(
  pkg-config        # virt-sys finds libvirt with it
  libvirt-dev       # the virt crate links libvirt
  libvirt-daemon    # libvirt drivers (the test driver runs in-process); libvirtd for real-VM tests
  libvirt-daemon-driver-qemu # the QEMU driver the real-VM tests' private libvirtd daemons load
  libvirt-clients   # virsh, handy next to a dev region
  systemd           # systemd-analyze verifies the unit files
  qemu-utils        # qemu-img inspects imported images
  qemu-system-x86   # qemu-system-x86_64 runs the real-VM tests' tiny TCG guests
  genisoimage       # genisoimage builds cloud-init seed ISOs; isoinfo reads them back
  python3-pyftpdlib # the FTP server image-import tests start (run with /usr/bin/python3)
  bindfs            # the shared-storage test's FUSE mount, which libvirt takes for GlusterFS
  prometheus        # the monitoring tests' Prometheus server and promtool
  prometheus-node-exporter # the peer the metrics benchmark compares the agent with
  prometheus-libvirt-exporter # the metrics benchmark's other peer: per-domain series from libvirt
  postgresql        # the store's tests on PostgreSQL start their own server (coordinator/src/dev/postgres.rs)
  lintian           # the package test (scripts/test-packages.sh) checks the .deb files with it
  openipmi          # ipmi_sim: the BMC simulator the bare-metal tests and benchmark talk to
  ipmitool          # the peer the bare-metal benchmark compares with; ipmi-sim.sh's readiness probe
  python3-venv      # the venvs of sushy-tools, openapi-spec-validator and schemathesis (below)
  python3-dev       # libvirt-python compiles against Python's headers...
  gcc               # ...with a C compiler
  curl              # a second HTTP/2 client for the 413 test (tests/bounds.rs); benchmarks' peer
  chromium          # the browser the console's tests drive (tests/console.rs); never a downloaded one
  fonts-wqy-microhei # CJK glyphs, so the zh-CN screens render (and screenshot) as text
  nodejs            # runs the console's browser tests and type check
  mmdebstrap        # scripts/cloud-guest.sh builds the tests' Debian cloud guest with it...
  fdisk             # ...sfdisk partitions its disk...
  e2fsprogs         # ...and mkfs.ext4 -d writes its root file system
  ebtables          # libvirt's nwfilter holds guest NICs to their EIPs with ebtables...
  iptables          # ...and iptables (the network tests' router counts packets with it too)
  iputils-ping      # the network tests' router pings guests
  dnsmasq-base      # the agent's DHCP and DHCPv6 servers for guests' NICs (agent/src/network/dhcp.rs)
  radvd             # ...and their IPv6 router advertisements
)

# What the tests run; all must be on PATH (or in /usr/sbin) when this script ends.
COMMANDS=(mmdebstrap sfdisk mkfs.ext4 ebtables iptables ping dnsmasq radvd unshare nsenter qemu-img qemu-system-x86_64 libvirtd genisoimage isoinfo bindfs prometheus promtool prometheus-node-exporter prometheus-libvirt-exporter lintian ipmi_sim ipmitool curl chromium node npm)

# sushy-tools' Redfish emulator for the Redfish inventory test (tests/baremetal_inventory.rs),
# which looks for it here. Its libvirt driver serves libvirt's test driver's domains as systems;
# libvirt-python builds against libvirt-dev (pip, about half a minute).
SUSHY_VENV=/opt/plinth-test/sushy
SUSHY_PINS=(sushy-tools==2.2.0 libvirt-python==12.8.0)

# openapi-spec-validator for the OpenAPI document test (tests/openapi_valid.rs), which runs
# this venv's `openapi-spec-validator` on docs/openapi.json.
OPENAPI_VENV=/opt/plinth-test/openapi-validator
OPENAPI_PINS=(openapi-spec-validator==0.9.0)

# Schemathesis for the API contract test (tests/schemathesis.rs), which runs this venv's
# `schemathesis` against a live region. Hypothesis makes the examples and jsonschema_rs checks
# the responses, so they are pinned too: the same seed then gives the same run.
SCHEMATHESIS_VENV=/opt/plinth-test/schemathesis
SCHEMATHESIS_PINS=(schemathesis==4.32.5 hypothesis==6.170.17 jsonschema_rs==0.60.3
  requests==2.34.2 urllib3==2.8.0)

# The console's test packages (playwright-core, typescript, openapi-typescript, the vendored
# libraries' types), pinned by coordinator/console/package-lock.json, installed with `npm ci`
# into coordinator/console/node_modules (ignored by git). Tests only: building and running the
# coordinator never needs npm.
CONSOLE_DIR="$(cd "$(dirname "$0")/.." && pwd)/coordinator/console"

# `npm ci` in the console's folder unless node_modules was made from this very lock file.
install_console_packages() {
  local want stamp="$CONSOLE_DIR/node_modules/.plinth-lock-sha256"
  want=$(sha256sum "$CONSOLE_DIR/package-lock.json" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  echo "Installing the console's test packages (npm ci in $CONSOLE_DIR)"
  (cd "$CONSOLE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing_commands() {
  local c out=()
  for c in "${COMMANDS[@]}"; do have "$c" || out+=("$c"); done
  echo "${out[*]}"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Whether the venv $1 holds exactly the pinned versions that follow.
venv_pinned() {
  local venv=$1
  shift
  "$venv/bin/python" - "$@" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
}

# Makes the venv $1 with exactly the pinned versions that follow, unless it has them.
install_venv() {
  local venv=$1
  shift
  venv_pinned "$venv" "$@" && return 0
  echo "Installing $* in $venv"
  $SUDO mkdir -p "$(dirname "$venv")"
  # Debian's interpreter, which python3-venv and python3-dev are for.
  $SUDO /usr/bin/python3 -m venv "$venv"
  $SUDO "$venv/bin/pip" install -q --disable-pip-version-check "$@"
  venv_pinned "$venv" "$@" || { echo "install-deps: $venv lacks $*" >&2; exit 1; }
}

install_venvs() {
  install_venv "$SUSHY_VENV" "${SUSHY_PINS[@]}"
  install_venv "$OPENAPI_VENV" "${OPENAPI_PINS[@]}"
  install_venv "$SCHEMATHESIS_VENV" "${SCHEMATHESIS_PINS[@]}"
}

if [ ${#missing[@]} -eq 0 ] && [ -z "$(missing_commands)" ]; then
  install_venvs
  install_console_packages
  exit 0
fi

# A private archive directory: apt's cache cleaner races concurrent installs otherwise.
archives=$(mktemp -d /tmp/plinth-apt.XXXXXX)
trap 'rm -rf "$archives"' EXIT
mkdir -p "$archives/partial"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  $SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    -o Dir::Cache::Archives="$archives" "$@"
}
$SUDO apt-get update -q -o DPkg::Lock::Timeout=600
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  apt_install "${missing[@]}"
  # The tests start their own Prometheus and node_exporter on 127.0.0.x; the system services
  # the packages start on a systemd machine would listen on every address, so stop what this
  # run installed.
  if [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-node-exporter prometheus-libvirt-exporter postgresql; do
      if [[ " ${missing[*]} " == *" $unit "* ]]; then
        $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

# Trap: a machine may start with a newer qemu-utils (e.g. 10.x from bookworm-backports).
# Installing Debian's qemu-system-x86 (7.2) then removes it, leaving no qemu-img. Put back
# the qemu-utils built from the same source as the installed qemu-system-x86.
if ! have qemu-img; then
  want=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
  echo "qemu-img is missing; installing qemu-utils${want:+ $want}"
  if [ -z "$want" ] || ! apt_install "qemu-utils=$want"; then
    apt_install qemu-utils
  fi
fi

# Debian's nodejs comes without npm (NodeSource's includes it; Debian's npm would clash).
if ! have npm; then
  apt_install npm
fi

still=$(missing_commands)
if [ -n "$still" ]; then
  echo "install-deps: still missing after install: $still" >&2
  exit 1
fi

install_venvs
install_console_packages
