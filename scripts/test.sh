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
scripts/setup.sh --e2e

CKSLAB_BIN_DIR=${CKSLAB_BIN_DIR:-$(scripts/build-k8s.sh 2>/dev/null | tail -n 1)}
export CKSLAB_BIN_DIR
# kind: a Docker engine of our own for this run (its own socket and data dir; stopped at the end
# with no container left), the offline node image, kube-router for NetworkPolicy and the
# stand-in images, all cached under ~/.cache/ckslab/kind and rebuilt only when an input changes.
if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then
  # (assignments first: `export X=$(cmd)` would hide a failing cmd from set -e)
  engine=$(scripts/docker-engine.sh start | tail -n 1)
  export "${engine:?}"
  # (a kind proof still running in the background goes first)
  trap 'if [[ -n ${kind_job:-} ]]; then kill "$kind_job" 2>/dev/null || true; fi; scripts/docker-engine.sh stop' EXIT
  CKSLAB_KIND_NODE_IMAGE=$(scripts/build-kind-node.sh | tail -n 1)
  export CKSLAB_KIND_NODE_IMAGE
  scripts/kind-netpol.sh | tail -n 1
  CKSLAB_KIND_LOAD_IMAGES=$(scripts/build-stand-in-images.sh | tr '\n' ' ')
  export CKSLAB_KIND_LOAD_IMAGES
  export PATH="$CKSLAB_BIN_DIR:$PATH" # kind v0.33 (built by build-kind-node.sh)
  # The engine is there: a kind test that cannot run fails instead of saying SKIPPED.
  export CKSLAB_REQUIRE_ENGINE=1
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --all-targets
# The integration tests that need a cluster share one; run test binaries one at a time so two
# clusters never compete for the same ports. The kind tests say SKIPPED (ignored) where no
# engine can be had.
cargo test --locked -- --test-threads=1 2>&1 | tee target/cargo-test.log

# The users' CI workflow must stay valid.
GOFLAGS= go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
"$(go env GOPATH)/bin/actionlint" .github/workflows/*.yml && echo "actionlint: workflows OK"

# The kind proofs run beside the local ones: another backend (a Docker engine, its own data
# dir, no shared ports), and most of a proof is waiting for restarts and rollouts, so together
# they take about as long as the local ones alone. Their lines are prefixed with [kind].
kind_job=""
if [[ ${CKSLAB_KIND_TESTS:-1} == 1 ]]; then
  (set -o pipefail; scripts/verify-scenarios.sh kind 2>&1 | sed -u 's/^/[kind] /') &
  kind_job=$!
fi
scripts/verify-scenarios.sh
if [[ -n $kind_job ]] && ! wait "$kind_job"; then
  cat target/verify-kind-failures.txt >&2 || true
  echo "test.sh: the scenario proofs on kind failed (lines marked [kind] above; details just above)" >&2
  exit 1
fi
if [[ -x tests/e2e/run.sh ]]; then
  tests/e2e/run.sh
fi
