#!/usr/bin/env bash
# The package test: builds the three Debian packages from the debug build (scripts/package.sh
# --debug), has lintian check them (any error fails), installs them for real with dpkg -i,
# checks the installed files, their owners and modes, the plinth system user the coordinator's
# postinst makes, that the coordinator initialises its data directory as that user, and
# `systemd-analyze verify` of the installed units; then purges them and checks that the user
# and the state are gone. Needs root (CI runs as root) and scripts/install-deps.sh's packages.
# Run after `cargo build --workspace --bins`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test-packages: needs root (dpkg -i)"; exit 1; }
for p in plinth plinth-agent plinth-coordinator; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "test-packages: $p is installed on this machine already; not touching it"; exit 1
  fi
done

out=$(mktemp -d /tmp/plinth-debs.XXXXXX)
purge() {
  dpkg --purge plinth plinth-coordinator plinth-agent >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap purge EXIT
OUT=$out scripts/package.sh --debug

failures=0
passes=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; passes=$((passes + 1)); }

# lintian: warnings are listed, errors fail.
lint=$(lintian --allow-root "$out"/*.deb 2>&1 || true)
echo "$lint" | sed 's/^/  lintian: /'
if echo "$lint" | grep -q '^E:'; then fail "lintian reported errors"; else pass "lintian: no errors"; fi

dpkg -i "$out"/plinth-agent_*.deb "$out"/plinth-coordinator_*.deb "$out"/plinth_*.deb
pass "dpkg -i of the three packages"

# path, owner:group, octal mode
expect() {
  local path=$1 want="$2 $3" got
  got=$(stat -c '%U:%G %a' "$path" 2>/dev/null || echo missing)
  [ "$got" = "$want" ] && pass "$path $got" || fail "$path is '$got', want '$want'"
}
expect /usr/bin/plinth-agent root:root 755
expect /usr/bin/plinth-coordinator root:root 755
expect /usr/bin/plinth root:root 755
expect /lib/systemd/system/plinth-agent.service root:root 644
expect /lib/systemd/system/plinth-coordinator.service root:root 644
expect /etc/plinth/agent.toml root:root 640
expect /etc/plinth/coordinator.toml root:plinth 640
expect /var/lib/plinth plinth:plinth 700
expect /var/lib/plinth-agent root:root 700

user=$(getent passwd plinth || true)
uid=$(echo "$user" | cut -d: -f3)
if [ -n "$user" ] && [ "$uid" -lt 1000 ] && [[ "$(echo "$user" | cut -d: -f7)" == */nologin ]]; then
  pass "plinth is a system user without a login shell: $user"
else
  fail "the plinth user is '$user'"
fi

for b in plinth-agent plinth-coordinator plinth; do
  if "/usr/bin/$b" --help >/dev/null; then pass "$b --help"; else fail "$b --help"; fi
done

# The user can initialise its data directory, and the unit's config file parses.
if runuser -u plinth -- /usr/bin/plinth-coordinator init --data-dir /var/lib/plinth --san 127.0.0.1 >/dev/null; then
  pass "plinth-coordinator init as the plinth user"
  expect /var/lib/plinth/ca.key plinth:plinth 600
else
  fail "plinth-coordinator init as the plinth user"
fi

said=$(systemd-analyze verify /lib/systemd/system/plinth-agent.service /lib/systemd/system/plinth-coordinator.service 2>&1) \
  && [ -z "$said" ] && pass "systemd-analyze verify of the installed units" \
  || fail "systemd-analyze verify: $said"

dpkg --purge plinth plinth-coordinator plinth-agent >/dev/null
for gone in /usr/bin/plinth-agent /usr/bin/plinth-coordinator /usr/bin/plinth /var/lib/plinth \
  /var/lib/plinth-agent /etc/plinth/coordinator.toml /lib/systemd/system/plinth-coordinator.service; do
  [ ! -e "$gone" ] && pass "purged: $gone" || fail "$gone is left after purge"
done
getent passwd plinth >/dev/null && fail "the plinth user is left after purge" || pass "purged: the plinth user"

echo "packages: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
