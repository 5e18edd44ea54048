#!/usr/bin/env bash
# Times the `lab` profile (what scripts/lab.sh builds): a build, then a rebuild after a
# one-line code change (a message in src/ui.rs, put back afterwards).
#   bench/lab-rebuild.sh              # CARGO_TARGET_DIR=<empty dir> for the full build figure
set -euo pipefail
cd "$(dirname "$0")/.."
file=src/ui.rs
backup=$(mktemp)
cp -p "$file" "$backup"
trap 'cp -p "$backup" "$file"; rm -f "$backup"' EXIT
t() { local s=$SECONDS; cargo build --profile lab --locked -q; echo "$1: $((SECONDS - s)) s (load $(cut -d' ' -f1-3 /proc/loadavg))"; }
t "lab build"
grep -q 'is not UTF-8' "$file" || { echo "lab-rebuild: the line to change is not in $file" >&2; exit 1; }
sed -i 's/is not UTF-8/is not valid UTF-8/' "$file"
t "lab rebuild after a one-line change"
