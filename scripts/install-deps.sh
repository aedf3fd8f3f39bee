#!/usr/bin/env bash
# Install what the test suite and the demo need on a fresh Debian machine.
#
# Idempotent: a tool already present is not reinstalled. Needs root for apt-get; without root
# it only reports what is missing (the tests that need those tools then skip loudly, except
# under CI=true, where they fail).
set -euo pipefail

need_pkgs=()
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
command -v ping >/dev/null 2>&1 || need_pkgs+=(iputils-ping)
command -v iperf3 >/dev/null 2>&1 || need_pkgs+=(iperf3)

if [ ${#need_pkgs[@]} -eq 0 ]; then
  echo "install-deps: everything present"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${need_pkgs[*]} and not root: tests needing them will skip" >&2
  exit 0
fi

echo "install-deps: installing ${need_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
echo "install-deps: done"
