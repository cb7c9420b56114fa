#!/usr/bin/env bash
# Vendors htmx from the npm registry into static/vendor/htmx (no CDN: classrooms may be offline).
# Usage: scripts/vendor-htmx.sh [version]   (default: the version in static/vendor/htmx/README)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(sed -n 's/^htmx \([0-9.]*\) .*/\1/p' static/vendor/htmx/README 2>/dev/null || true)}"
version="${version:-2.0.11}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${version}" >/dev/null && tar xzf htmx.org-*.tgz)
mkdir -p static/vendor/htmx
cp "$work/package/dist/htmx.min.js" "$work/package/LICENSE" static/vendor/htmx/
printf 'htmx %s from the npm registry (htmx.org), BSD Zero Clause licence (LICENSE).\nRefresh with scripts/vendor-htmx.sh <version>.\n' "$version" > static/vendor/htmx/README
echo "htmx ${version} vendored into static/vendor/htmx"
