#!/usr/bin/env bash
# What the system must provide for the full test suite and the sandbox:
# bubblewrap (sandbox/), PostgreSQL server binaries (the PostgreSQL store suite),
# Chromium (dashboard and report tests in a real browser), iproute2 and iptables
# (mesh tests in network namespaces). Installed with apt-get when missing and
# running as root (CI runs as root on a clean clone); otherwise it says what to
# install and leaves the choice to the user.
set -u
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "apt-get install ${need[*]} failed" >&2; exit 1; }
else
  echo "note: missing system packages: ${need[*]} (sudo apt-get install ${need[*]});" \
       "the tests that need them will say so" >&2
fi
