#!/usr/bin/env bash
# Install Debian's Chromium (and a Korean font, so screenshots are legible;
# and ruby for the Logstash filter test)
# for the browser end-to-end tests in e2e/, if it is missing. Called by
# scripts/test.sh before `go test`; safe to run again (does nothing when
# /usr/bin/chromium exists). Needs root (CI and developer machines run as
# root) and Debian's package mirror.
set -uo pipefail

# ruby runs the Logstash pipeline's filter code in internal/search's test.
pkgs=()
[[ -x /usr/bin/chromium ]] || pkgs+=(chromium)
dpkg-query -W -f='${Status}' fonts-nanum 2>/dev/null | grep -q 'ok installed' || pkgs+=(fonts-nanum)
command -v ruby >/dev/null 2>&1 || pkgs+=(ruby)
if ((${#pkgs[@]} == 0)); then
  exit 0
fi
SUDO=""
if [[ $(id -u) != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-chromium: not root and no sudo; install the 'chromium' package by hand" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "==> installing ${pkgs[*]} for the browser tests"
if ! $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
  $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}" || {
    echo "install-chromium: apt-get install chromium failed" >&2
    exit 1
  }
fi
[[ -x /usr/bin/chromium ]] || { echo "install-chromium: /usr/bin/chromium still missing" >&2; exit 1; }
