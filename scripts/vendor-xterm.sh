#!/usr/bin/env bash
# Refreshes the vendored xterm.js (the web UI's terminal pane) in web/static/vendor/xterm/ from
# the npm registry: `npm pack` fetches each pinned package and checks it against the registry's
# integrity digest; this copies the browser builds, the stylesheet and the licences, and writes
# VERSIONS.txt with each package's version and sha512 integrity. The files are committed, so a
# build never needs the network; run this only to move the pins.
#
#   scripts/vendor-xterm.sh                 # the pinned versions below
#   XTERM_VERSION=6.0.0 FIT_VERSION=0.11.0 scripts/vendor-xterm.sh
set -euo pipefail

XTERM_VERSION=${XTERM_VERSION:-6.0.0}
FIT_VERSION=${FIT_VERSION:-0.11.0}

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/web/static/vendor/xterm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "error: npm is needed (apt-get install -y npm)" >&2; exit 1; }

# Fetches one package into $work/<dir>/package and prints its integrity.
fetch() {
  local spec=$1 dir=$2 json
  json=$(cd "$work" && npm pack --json --silent "$spec")
  mkdir -p "$work/$dir"
  tar -xzf "$work/$(node -e 'process.stdout.write(JSON.parse(process.argv[1])[0].filename)' "$json")" -C "$work/$dir"
  node -e 'process.stdout.write(JSON.parse(process.argv[1])[0].integrity)' "$json"
}

xterm_integrity=$(fetch "@xterm/xterm@$XTERM_VERSION" xterm)
fit_integrity=$(fetch "@xterm/addon-fit@$FIT_VERSION" fit)

rm -rf "$out"
mkdir -p "$out"
cp "$work/xterm/package/lib/xterm.js" "$out/xterm.js"
cp "$work/xterm/package/css/xterm.css" "$out/xterm.css"
cp "$work/xterm/package/LICENSE" "$out/LICENSE-xterm.txt"
cp "$work/fit/package/lib/addon-fit.js" "$out/addon-fit.js"
cp "$work/fit/package/LICENSE" "$out/LICENSE-addon-fit.txt"
# The builds end with a source-map comment; the maps are not vendored.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/xterm.js" "$out/addon-fit.js"
cat >"$out/VERSIONS.txt" <<END
Vendored by scripts/vendor-xterm.sh from the npm registry (MIT licence: see the LICENSE files).
@xterm/xterm $XTERM_VERSION $xterm_integrity
@xterm/addon-fit $FIT_VERSION $fit_integrity
END
echo "vendored into $out:"
cat "$out/VERSIONS.txt"
