#!/usr/bin/env bash
# Vendors noVNC's core library from the npm registry into static/vendor/novnc (no CDN: classrooms
# may be offline). Usage: scripts/vendor-novnc.sh [version]   (default: the version in the README)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(sed -n 's/^noVNC \([0-9.]*\) .*/\1/p' static/vendor/novnc/README)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@novnc/novnc@${version}" >/dev/null && tar xzf novnc-novnc-*.tgz)
rm -rf static/vendor/novnc/core static/vendor/novnc/vendor
cp -r "$work/package/core" "$work/package/vendor" "$work/package/LICENSE.txt" "$work/package/AUTHORS" static/vendor/novnc/
sed -i "1s/^noVNC [0-9.]* /noVNC ${version} /" static/vendor/novnc/README
echo "noVNC ${version} vendored into static/vendor/novnc"
