#!/usr/bin/env bash
# Times `ckslab grade` on a settled failing state and a settled passing state of the scenarios
# whose checks have `settle:` windows: what a learner waits for after pressing Check. A failing
# check retries only while what it reads changed less than `settle` seconds ago, so a state
# left alone for longer than the largest window must grade at the speed of its probes.
# Needs a running lab cluster (`ckslab up`); changes the lab (start, solve).
#   bench/grade-settle.sh [rounds] [scenario ...]
# CKSLAB picks the binary (compare two builds by running the script once with each);
# CKSLAB_ARGS are global options for it (e.g. "--backend local --scenarios scenarios").
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ckslab=${CKSLAB:-$repo/target/debug/ckslab}
rounds=${1:-3}
shift || true
ids=("$@")
[[ ${#ids[@]} -gt 0 ]] || ids=(seccomp-runtime-default image-digest-policy audit-policy rbac-least-privilege)
# Longer than every settle window of these scenarios (15 s) plus the timestamps' 1 s.
quiet=${QUIET_SECONDS:-17}
read -r -a global <<<"${CKSLAB_ARGS:-}"
ck() { "$ckslab" "${global[@]}" "$@"; }

# Milliseconds of one `ckslab grade`, and its exit code (0 pass, 1 fail, 2 error).
time_grade() {
  local id=$1 start end code=0
  start=$(date +%s%N)
  ck grade "$id" >/dev/null 2>&1 || code=$?
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) $code"
}

measure() {
  local id=$1 state=$2 want=$3 total=0 worst=0 ms code
  for _ in $(seq "$rounds"); do
    read -r ms code < <(time_grade "$id")
    [[ $code == "$want" ]] || { echo "$id $state: grade exited $code, expected $want" >&2; exit 1; }
    total=$((total + ms)); (( ms > worst )) && worst=$ms
  done
  printf '%-26s %-8s mean %6d ms  worst %6d ms  (%d rounds)\n' "$id" "$state" $((total / rounds)) "$worst" "$rounds"
}

for id in "${ids[@]}"; do
  ck start "$id" >/dev/null
  sleep "$quiet"
  measure "$id" failing 1
  ck solve "$id" >/dev/null
  sleep "$quiet"
  measure "$id" passing 0
done
