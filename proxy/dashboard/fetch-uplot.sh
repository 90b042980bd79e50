#!/usr/bin/env bash
# fetch-uplot.sh vendors the uPlot chart library (MIT) into assets/vendor/uplot from the npm
# registry: `npm pack` of one pinned version, its dist files and its LICENSE copied as they are.
# Run by `go generate ./proxy/dashboard`; needs npm. Bump UPLOT_VERSION to upgrade.
set -euo pipefail
UPLOT_VERSION="${UPLOT_VERSION:-1.6.32}"
cd "$(dirname "$0")"
out=assets/vendor/uplot
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null && tar -xzf "uplot-${UPLOT_VERSION}.tgz")
rm -rf "$out"
mkdir -p "$out"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$out/"
printf 'uplot %s from the npm registry (npm pack uplot@%s), MIT licence: see LICENSE.\n' "$UPLOT_VERSION" "$UPLOT_VERSION" >"$out/VERSION"
echo "vendored uplot@${UPLOT_VERSION} into $out"
