#!/usr/bin/env bash
# Installs the Debian packages Nestlab needs that a fresh machine may lack:
#   build: the LDAP client headers python-ldap compiles against (pip install needs them);
#   vcsim: go + govmomi, gorilla/websocket and x/image sources (to build the vCenter simulator);
#   browser: chromium (browser tests); ldap: slapd, the directory server the tests start;
#   saml: xmlsec1, with which the tests' SAML identity provider (pysaml2) signs its assertions.
# Usage: scripts/install-system-deps.sh [build] [vcsim] [browser] [ldap] [saml]   (default: all)
# Does nothing for what is already there; uses sudo when not root.
set -euo pipefail

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(build vcsim browser ldap saml)

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
    build)
      [ -f /usr/include/ldap.h ] || packages+=(libldap-dev)
      [ -f /usr/include/sasl/sasl.h ] || packages+=(libsasl2-dev)
      command -v gcc >/dev/null 2>&1 || packages+=(gcc)
      ;;
    ldap)
      [ -x /usr/sbin/slapd ] || packages+=(slapd)
      command -v ldapadd >/dev/null 2>&1 || packages+=(ldap-utils)
      ;;
    saml)
      command -v xmlsec1 >/dev/null 2>&1 || packages+=(xmlsec1)
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
