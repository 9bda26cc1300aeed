#!/usr/bin/env bash
# The whole test suite, on a fresh machine:
#   Rust: cargo fmt --check, cargo clippy (warnings are errors), cargo test
#   C:    cmake configure + build in build/, then ctest (examples and tests/c)
#   Fuzz:   scripts/fuzz.sh 30 (each libFuzzer target for 30 s; a finding fails)
#   Soak:   scripts/soak.sh 0.5 (random maps for 30 s, every result checked)
#   Memory: scripts/sanitize.sh (tests/c under ASan/LSan and valgrind memcheck, the Rust tests
#           under memcheck: the CI subset; installs valgrind when missing)
#
#   scripts/test.sh
#
# Installs cmake, gcc and gfortran with apt-get when they are missing.
# Exits nonzero as soon as any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

step() { echo; echo "==> $*"; }

ensure_tools cmake:cmake cc:gcc gcc:gcc c++:g++ gfortran:gfortran pkg-config:pkg-config readelf:binutils
ensure_cargo
# numpy is the reference of tests/c/argsort_numpy.py.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import numpy" 2>/dev/null; then
  echo "==> installing numpy (pip)"
  python3 -m pip install --quiet numpy
fi
jobs="$(nproc 2>/dev/null || echo 2)"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --release"
cargo test --release

step "cmake configure (build/)"
configure_build
step "cmake build"
cmake --build build -j "$jobs"

step "ctest"
cd build
# A per-test timeout for tests that set none, so a hang cannot eat CI's budget.
ctest --output-on-failure --timeout 300

# ---- Short fuzz and soak runs (issue 6); the long ones are run by hand (README, "Run the tests").
cd ..
step "scripts/fuzz.sh 30 (libFuzzer: argsort against a reference, every export's argument checks)"
bash scripts/fuzz.sh 30
step "scripts/soak.sh 0.5 (random maps, faults and regions for 30 s)"
bash scripts/soak.sh 0.5

# ---- Memory checks (issue 6): tests/c under AddressSanitizer/LeakSanitizer and valgrind memcheck,
# and the Rust tests under memcheck; the CI subset (a few minutes).  Everything: scripts/sanitize.sh full.
step "scripts/sanitize.sh (ASan + LSan, valgrind memcheck)"
bash scripts/sanitize.sh
