#!/usr/bin/env bash
# Copy the admin pages' charting library into diffusellm/app/static/vendor/ from its npm package:
# `npm pack` fetches the pinned tarball, and only its built files and licence are kept. The pages
# serve these copies, so no browser ever loads a script from another host. Rerun after changing
# UPLOT_VERSION, then commit the folder.
set -euo pipefail

UPLOT_VERSION="1.6.32"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENDOR="$HERE/diffusellm/app/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null && tar xzf "uplot-$UPLOT_VERSION.tgz")
mkdir -p "$VENDOR"
cp "$WORK/package/dist/uPlot.iife.min.js" "$VENDOR/uPlot.iife.min.js"
cp "$WORK/package/dist/uPlot.min.css" "$VENDOR/uPlot.min.css"
cp "$WORK/package/LICENSE" "$VENDOR/uPlot.LICENSE"
cat > "$VENDOR/README" <<NOTE
uPlot $UPLOT_VERSION (https://github.com/leeoniya/uPlot), MIT licence (uPlot.LICENSE).
uPlot.iife.min.js and uPlot.min.css are dist/ files of the npm package uplot@$UPLOT_VERSION, unchanged,
copied by scripts/vendor_static.sh. The training page draws its charts with them.
NOTE
echo "copied uplot@$UPLOT_VERSION into $VENDOR"
