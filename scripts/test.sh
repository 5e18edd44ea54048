#!/usr/bin/env bash
# Sets up and runs every test: unit and integration tests (the local backend's tests bring up
# a real control plane), the scenario proofs (`ckslab verify --all` on the local backend) and
# the browser end-to-end test.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/setup.sh --e2e

export CKSLAB_BIN_DIR=${CKSLAB_BIN_DIR:-$(scripts/build-k8s.sh 2>/dev/null | tail -n 1)}
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --all-targets
# The integration tests that need a cluster share one; run test binaries one at a time so two
# clusters never compete for the same ports.
cargo test --locked -- --test-threads=1 --skip kind_up_verify_down 2>&1 | tee target/cargo-test.log
# The real-kind test runs on its own, with its output shown: it says why it could not run
# where there is no Docker engine (as on our CI machine).
cargo test --locked --test kind_cluster -- --nocapture 2>&1 | tee -a target/cargo-test.log

# The users' CI workflow must stay valid.
GOFLAGS= go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
"$(go env GOPATH)/bin/actionlint" .github/workflows/*.yml && echo "actionlint: workflows OK"

scripts/verify-scenarios.sh
if [[ -x tests/e2e/run.sh ]]; then
  tests/e2e/run.sh
fi
