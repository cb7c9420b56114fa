#!/usr/bin/env bash
# Installs the Debian packages Nestlab needs that a fresh machine may lack:
#   go + govmomi, gorilla/websocket and x/image sources (to build the vCenter simulator), chromium (browser tests).
# Usage: scripts/install-system-deps.sh [vcsim] [browser]   (default: both)
# Does nothing for what is already there; uses sudo when not root.
set -euo pipefail

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(vcsim browser)

packages=()
for item in "${wanted[@]}"; do
  case "$item" in
    vcsim)
      command -v go >/dev/null 2>&1 || packages+=(golang-go)
      [ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || packages+=(golang-github-vmware-govmomi-dev)
      # the launcher's WebMKS console host: WebSocket and the screen's font
      [ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || packages+=(golang-github-gorilla-websocket-dev)
      [ -d /usr/share/gocode/src/golang.org/x/image/font/basicfont ] || packages+=(golang-golang-x-image-dev)
      ;;
    browser)
      [ -x /usr/bin/chromium ] || packages+=(chromium)
      ;;
    *) echo "unknown item: $item" >&2; exit 2 ;;
  esac
done

[ ${#packages[@]} -eq 0 ] && exit 0

if [ -n "${NESTLAB_VCSIM_BIN:-}" ] && [ "${wanted[*]}" = "vcsim" ]; then
  exit 0  # a prebuilt simulator is named; no toolchain needed
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Nestlab needs these Debian packages: ${packages[*]}. Install them as root (apt-get install ${packages[*]})." >&2
    exit 1
  fi
fi
echo "Installing Debian packages: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
