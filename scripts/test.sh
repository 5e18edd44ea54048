#!/usr/bin/env bash
# Sets up and runs every test: unit and integration tests (the local backend's tests bring up
# a real control plane; the kind tests a real two-node kind cluster in a Docker engine of their
# own), the scenario proofs (`ckslab verify --all` and the moving-on chain on the local backend,
# the real-node scenarios on kind) and the browser end-to-end test.
#
#   CKSLAB_KIND_TESTS=0 scripts/test.sh    # skip everything that needs Docker (reported SKIPPED)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/setup.sh --e2e --packages-only
mkdir -p target
base_path=$PATH

# The Go builds (the Kubernetes binaries, the node tools, the kind node image, kube-router) and
# the Rust build need nothing from each other: the Go side runs in the background while cargo
# lints and builds, and what it found for the kind tests comes back through target/ci-prep.env.
# kind: a Docker engine of our own for this run (its own socket and data dir; stopped at the end
# with no container left), the offline node image, kube-router for NetworkPolicy and the
# stand-in images, all cached under ~/.cache/ckslab/kind and rebuilt only when an input changes.
prep_log=target/ci-prep.log
prep_env=target/ci-prep.env
: >"$prep_env"
kind_job="" prep_job=""
if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then
  # (assignments first: `export X=$(cmd)` would hide a failing cmd from set -e)
  engine=$(scripts/docker-engine.sh start | tail -n 1)
  export "${engine:?}"
fi
# (a job still running in the background goes first, then the engine)
trap 'for job in $prep_job $kind_job; do kill "$job" 2>/dev/null || true; done
  if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then scripts/docker-engine.sh stop; fi' EXIT
(
  set -euo pipefail
  start=$SECONDS
  # (each value is assigned before it is written: a failing build then stops the job)
  kind=""
  [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]] && kind=1
  # The node image's other parts (etcd, CoreDNS, crictl, kind, pause, and the Debian root file
  # system, minutes of download) are made beside the Kubernetes build.
  parts=""
  if [[ -n $kind ]]; then
    scripts/build-kind-node.sh --parts >target/ci-prep-parts.log 2>&1 &
    parts=$!
  fi
  # (progress goes to the log through stderr; the last stdout line is the value)
  bin_dir=$(scripts/build-k8s.sh ${kind:+--node} | tee /dev/stderr | tail -n 1)
  echo "CKSLAB_BIN_DIR=$bin_dir" >>"$prep_env"
  scripts/build-tools.sh | tail -n 1
  if [[ -n $kind ]]; then
    wait "$parts" || { cat target/ci-prep-parts.log; echo "test.sh: build-kind-node.sh --parts failed" >&2; exit 1; }
    cat target/ci-prep-parts.log
    node_image=$(scripts/build-kind-node.sh | tee /dev/stderr | tail -n 1)
    echo "CKSLAB_KIND_NODE_IMAGE=$node_image" >>"$prep_env"
    scripts/kind-netpol.sh | tail -n 1
    stand_ins=$(scripts/build-stand-in-images.sh | tr '\n' ' ')
    echo "CKSLAB_KIND_LOAD_IMAGES=$stand_ins" >>"$prep_env"
  fi
  echo "test.sh: Go builds and kind images ready in $((SECONDS - start))s"
) >"$prep_log" 2>&1 &
prep_job=$!

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --all-targets

if ! wait "$prep_job"; then
  prep_job=""
  tail -n 60 "$prep_log" >&2
  echo "test.sh: the Go builds or kind images failed (all of it in $prep_log)" >&2
  exit 1
fi
prep_job=""
tail -n 3 "$prep_log"
while IFS= read -r line; do export "${line?}"; done <"$prep_env"
[[ -n ${CKSLAB_BIN_DIR:-} ]] || { echo "test.sh: build-k8s.sh printed no bin dir" >&2; exit 1; }
if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then
  export PATH="$CKSLAB_BIN_DIR:$PATH" # kind v0.33 (built by build-kind-node.sh)
  # The engine is there: a kind test that cannot run fails instead of saying SKIPPED.
  export CKSLAB_REQUIRE_ENGINE=1
fi

# The kind proofs (the longest part) start as soon as ckslab is built, and run beside the cargo
# tests and the local proofs: another backend (a Docker engine, its own data
# dir, no shared ports), and most of a proof is waiting for restarts and rollouts, so together
# they take about as long as the local ones alone. Their lines are prefixed with [kind].
#
# They run as a classroom machine does: from a bundle (`ckslab bundle create`) installed into
# an empty cache, with the images gone from the engine and no CKSLAB_KIND_* variable, so `up`
# must take the node image, kube-router and the stand-ins from the installed archives.
if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then
  bundle=target/ci-bundle.tar.gz class_cache=$repo/target/ci-bundle-cache
  rm -rf "$class_cache" "$bundle"
  start=$SECONDS
  target/debug/ckslab bundle create --out "$bundle" | grep -v '^  ' || true
  [[ -f $bundle ]] || { echo "test.sh: bundle create wrote no bundle" >&2; exit 1; }
  env -u CKSLAB_BIN_DIR -u CKSLAB_NODE_TOOLS_DIR CKSLAB_CACHE="$class_cache" \
    target/debug/ckslab bundle install "$bundle" | grep -v '^  '
  # shellcheck disable=SC2086 # a list of image names
  docker rmi "$CKSLAB_KIND_NODE_IMAGE" ckslab/kube-router:v2.1.0 $CKSLAB_KIND_LOAD_IMAGES >/dev/null ||
    echo "test.sh: WARNING: not every image could be removed from the engine (a container left by a kind test?), so the kind proofs do not show that up loads them" >&2
  rm -f "$bundle"
  echo "test.sh: classroom bundle made and installed into an empty cache in $((SECONDS - start))s"
  # (failures of an earlier run's proofs are not this run's)
  rm -f target/verify-kind-*.failure
  # The upgrade lab's node image (v1.33.13: seven more Kubernetes binaries) is built while the
  # other kind proofs run, which mostly wait, and its proof comes last; its archive goes into
  # the class cache where a bundle would put it (tests/bundle.rs shows a bundle carries it), and
  # not into the engine, so its `up` loads it from there too.
  (set -o pipefail
    kind_env=(env -u CKSLAB_BIN_DIR -u CKSLAB_NODE_TOOLS_DIR -u CKSLAB_KIND_NODE_IMAGE -u CKSLAB_KIND_LOAD_IMAGES
      CKSLAB_CACHE="$class_cache" PATH="$base_path" CKSLAB="$class_cache/bin/ckslab")
    (start=$SECONDS
      upgrade_image=$(scripts/build-kind-node.sh --upgrade-from | tail -n 1)
      # (the archive is named by the image's tag: kind-node-v1.33.13.tar)
      cp "${CKSLAB_CACHE:-$HOME/.cache/ckslab}/kind/kind-node-${upgrade_image##*:}.tar" "$class_cache/kind/"
      docker rmi "$upgrade_image" >/dev/null
      echo "test.sh: the upgrade lab's node image ready in $((SECONDS - start))s") >target/ci-upgrade-image.log 2>&1 &
    upgrade_job=$!
    ok=1
    # image-policy-webhook needs only the API and the control plane's files, and the local
    # proofs of this run prove it whole; left out here to make room for the upgrade lab.
    CKSLAB_VERIFY_SKIP="image-policy-webhook kubeadm-upgrade" "${kind_env[@]}" scripts/verify-scenarios.sh kind 2>&1 | sed -u 's/^/[kind] /' || ok=0
    if wait "$upgrade_job"; then
      tail -n 1 target/ci-upgrade-image.log | sed 's/^/[kind] /'
      "${kind_env[@]}" scripts/verify-scenarios.sh kind kubeadm-upgrade 2>&1 | sed -u 's/^/[kind] /' || ok=0
    else
      { echo "== the upgrade lab's node image: build-kind-node.sh --upgrade-from failed"; tail -n 40 target/ci-upgrade-image.log; } >target/verify-kind-upgrade-image.failure
      ok=0
    fi
    [[ $ok == 1 ]]) &
  kind_job=$!
fi

# The integration tests that need a cluster share one; run test binaries one at a time so two
# clusters never compete for the same ports. The two that need the engine (a kind cluster by
# the same name as the proofs', a node-image container) run after the kind proofs; without an
# engine they run here and say SKIPPED (ignored).
engine_tests=(kind_cluster kind_node_image)
first=(--lib --bins)
for f in tests/*.rs; do
  name=$(basename "$f" .rs)
  if [[ -z $kind_job || " ${engine_tests[*]} " != *" $name "* ]]; then first+=(--test "$name"); fi
done
cargo test --locked "${first[@]}" -- --test-threads=1 2>&1 | tee target/cargo-test.log
cargo test --locked --doc 2>&1 | tee -a target/cargo-test.log

# The users' CI workflow must stay valid.
GOFLAGS= go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
"$(go env GOPATH)/bin/actionlint" .github/workflows/*.yml && echo "actionlint: workflows OK"

scripts/verify-scenarios.sh
# The browser test needs the local cluster's ports, which the local proofs have just freed; it
# runs while the kind proofs (the longer list) go on.
if [[ -x tests/e2e/run.sh ]]; then
  tests/e2e/run.sh
fi
if [[ -n $kind_job ]] && ! wait "$kind_job"; then
  cat target/verify-kind-*.failure >&2 2>/dev/null || true
  echo "test.sh: the scenario proofs on kind failed (lines marked [kind] above; details just above)" >&2
  exit 1
fi
if [[ -n $kind_job ]]; then
  kind_job=""
  engine_args=()
  for name in "${engine_tests[@]}"; do engine_args+=(--test "$name"); done
  cargo test --locked "${engine_args[@]}" 2>&1 | tee -a target/cargo-test.log
fi
