#!/usr/bin/env bash
# Build sharedmem and run the C examples (c-examples/), on a fresh machine.
#
#   scripts/examples.sh
#
# Installs cmake and a C compiler with apt-get when they are missing, builds
# the Rust library and the examples (target sharedmem_examples: not the tests)
# in build/, then runs every example once per backend through ctest and prints
# their output.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_tools cmake:cmake cc:gcc
ensure_cargo

echo "==> configure (build/)"
# The MPI examples (c-examples/mpi_*) run under a launcher, in the MPI build directories of
# scripts/test.sh; build/ is configured without MPI, as test.sh configures it.
configure_build -DSM_BUILD_EXAMPLES=ON -DSM_WITH_MPI=OFF
echo "==> build"
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target sharedmem_examples
echo "==> run the examples"
cd build
ctest -L example --output-on-failure -V
