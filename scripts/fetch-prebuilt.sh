#!/usr/bin/env bash
# Downloads the prebuilt ckslab of one commit from a mirror, and uses it only once its SHA-256
# matches the checksum the mirror publishes beside it. scripts/lab.sh calls it where
# CKSLAB_MIRROR is set, so a first run waits for a download instead of a Rust build.
#
#   scripts/fetch-prebuilt.sh MIRROR_URL COMMIT OUT
#
# Layout (scripts/publish-prebuilt.sh writes it): MIRROR_URL/ckslab/<commit>/ckslab-linux-<arch>
# and, beside it, <that>.sha256 (sha256sum's line, or the bare digest). OUT is written only
# after the digest matched; on any failure (no checksum, a download cut short, a mismatch, a
# server that stalls for CKSLAB_PREBUILT_STALL seconds, default 30) it exits 1 with the reason
# and leaves OUT as it was.
set -euo pipefail
if (($# != 3)); then
  echo "usage: $0 MIRROR_URL COMMIT OUT" >&2
  exit 2
fi
mirror=${1%/} commit=$2 out=$3
stall=${CKSLAB_PREBUILT_STALL:-30}
url="$mirror/ckslab/$commit/ckslab-linux-$(uname -m)"
mkdir -p "$(dirname "$out")"
part=$(mktemp "$out.part.XXXXXX")
trap 'rm -f "$part"' EXIT
fail() {
  echo "fetch-prebuilt: $*" >&2
  exit 1
}

sum=$(curl -fsS --connect-timeout 10 --max-time "$stall" "$url.sha256" 2>&1) ||
  fail "no checksum for the prebuilt ckslab at $url.sha256 ($sum)"
want=${sum%%[[:space:]]*}
[[ $want =~ ^[0-9a-f]{64}$ ]] || fail "$url.sha256 holds no SHA-256 digest: ${sum:0:80}"
# A server that sends less than 1 byte/s for $stall seconds is given up on.
err=$(curl -fsS --connect-timeout 10 --speed-limit 1 --speed-time "$stall" -o "$part" "$url" 2>&1) ||
  fail "downloading $url: $err"
got=$(sha256sum "$part" | cut -d' ' -f1)
[[ $got == "$want" ]] ||
  fail "$url has SHA-256 $got, but $url.sha256 says $want: refused, nothing installed"
chmod 755 "$part"
mv -f "$part" "$out"
echo "fetch-prebuilt: ckslab $commit ($(du -h "$out" | cut -f1)) from $mirror, SHA-256 $got verified"
