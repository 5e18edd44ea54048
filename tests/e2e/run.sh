#!/usr/bin/env bash
# End-to-end test of the web UI: builds ckslab, makes sure a local-backend lab cluster is up
# (bringing one up under $CKSLAB_HOME if not), starts `ckslab serve --no-open` on a free port,
# runs ui.test.mjs in headless Chromium (node --test + playwright-core), stops the server, and
# prints "N passed, N failed" last. Exit status is non-zero on any failure.
#
# Environment:
#   CKSLAB_HOME      data dir for the cluster and history (default: target/e2e-home)
#   E2E_SCENARIO     scenario to play (default: rbac-least-privilege)
#   KEEP_CLUSTER=1   leave a cluster this script brought up running
#   E2E_SKIP_BUILD=1 use target/debug/ckslab as it is ($CARGO_TARGET_DIR/debug when that is set)
#   CHROMIUM         browser binary (default: /usr/bin/chromium)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -z ${CKSLAB_HOME:-} ]]; then
  export CKSLAB_HOME=$root/target/e2e-home
  # This data dir belongs to the test: start from an empty history.
  rm -f "$CKSLAB_HOME"/history.sqlite3*
  export E2E_FRESH_HISTORY=1
fi
export CKSLAB_BACKEND=local
target=${CARGO_TARGET_DIR:-$root/target}
built=$target/debug/ckslab
# A private copy: a parallel `cargo build` may replace target/debug/ckslab mid-run, and the
# local backend's supervisor is spawned from the running binary.
export CKSLAB_BIN=$root/target/e2e-bin/ckslab
export E2E_ARTIFACTS=$root/target/e2e-artifacts
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
mkdir -p "$E2E_ARTIFACTS" "$CKSLAB_HOME"
server_log=$E2E_ARTIFACTS/serve.log
server_pid=
brought_up=
classroom_pid=
joined=

summary() {
  echo "$1 passed, $2 failed"
}

cleanup() {
  if [[ -n $joined ]]; then
    "$CKSLAB_BIN" classroom leave >/dev/null 2>&1 || echo "warning: ckslab classroom leave failed"
    joined=
  fi
  if [[ -n $classroom_pid ]]; then
    kill -TERM "$classroom_pid" 2>/dev/null
    classroom_pid=
  fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  if [[ -n $brought_up && -z ${KEEP_CLUSTER:-} ]]; then
    echo "deleting the lab cluster this run brought up"
    "$CKSLAB_BIN" down >/dev/null 2>&1 || echo "warning: ckslab down failed"
  fi
}
trap cleanup EXIT

fail_early() {
  echo "error: $1" >&2
  cleanup
  trap - EXIT
  summary 0 1
  exit 1
}

if [[ -z ${E2E_SKIP_BUILD:-} ]]; then
  (cd "$root" && cargo build --bin ckslab) || fail_early "cargo build failed"
fi
[[ -x $built ]] || fail_early "$built is missing"
mkdir -p "$(dirname "$CKSLAB_BIN")"
cp "$built" "$CKSLAB_BIN.new" && mv -f "$CKSLAB_BIN.new" "$CKSLAB_BIN" || fail_early "copying $built"
[[ -x $CHROMIUM ]] || fail_early "no Chromium at $CHROMIUM (apt-get install -y chromium)"
if [[ ! -d $here/node_modules/playwright-core ]]; then
  (cd "$here" && npm ci --no-audit --no-fund) || fail_early "npm ci failed"
fi

if "$CKSLAB_BIN" status >/dev/null 2>&1; then
  echo "using the running local lab cluster under $CKSLAB_HOME"
else
  echo "bringing up a local lab cluster under $CKSLAB_HOME"
  brought_up=1
  "$CKSLAB_BIN" up || fail_early "ckslab up --backend local failed"
  # Ours to delete and re-create from the UI.
  export E2E_OWN_CLUSTER=1
fi

# An instructor's classroom for this learner, only when the data dir is the test's own (joining
# changes where a user's grades go).
if [[ -n ${E2E_FRESH_HISTORY:-} ]]; then
  classroom_home=$root/target/e2e-classroom
  classroom_log=$E2E_ARTIFACTS/classroom.log
  rm -rf "$classroom_home"
  "$CKSLAB_BIN" --home "$classroom_home" classroom serve --listen 127.0.0.1:0 --name e2e >"$classroom_log" 2>&1 &
  classroom_pid=$!
  board=
  for _ in $(seq 100); do
    board=$(grep -o 'http://127\.0\.0\.1:[0-9]*/?key=[0-9a-f]*' "$classroom_log" | head -n1)
    [[ -n $board ]] && break
    sleep 0.1
  done
  [[ -n $board ]] || { cat "$classroom_log" >&2; fail_early "ckslab classroom serve did not start"; }
  token=$(grep -o -- '--token [0-9a-f]*' "$classroom_log" | head -n1 | awk '{print $2}')
  "$CKSLAB_BIN" classroom join "${board%%/?key=*}" --token "$token" --name "E2E Learner" || fail_early "ckslab classroom join failed"
  joined=1
  export CLASSROOM_BOARD=$board
fi

"$CKSLAB_BIN" serve --no-open --port 0 >"$server_log" 2>&1 &
server_pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$server_log" | head -n1)
  [[ -n $url ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $url ]] || { cat "$server_log" >&2; fail_early "ckslab serve did not start"; }
export CKSLAB_URL=$url
echo "ckslab serve is on $url (log: $server_log)"

tap=$E2E_ARTIFACTS/ui.tap
(cd "$here" && node --test --test-reporter=tap --test-timeout=600000 ui.test.mjs) | tee "$tap"
node_status=${PIPESTATUS[0]}
passed=$(grep -E '^# pass [0-9]+' "$tap" | tail -n1 | awk '{print $3}')
failed=$(grep -E '^# fail [0-9]+' "$tap" | tail -n1 | awk '{print $3}')
passed=${passed:-0}
failed=${failed:-0}
if [[ $node_status -ne 0 && $failed -eq 0 ]]; then
  failed=1
fi
echo "screenshots: $E2E_ARTIFACTS/*.png"
cleanup
trap - EXIT
summary "$passed" "$failed"
[[ $failed -eq 0 ]]
