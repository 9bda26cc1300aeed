#!/bin/sh
# Builds tests/omp as its own project with another C compiler and runs its tests.
#   run_other_compiler.sh SRC BIN CC CMAKE CTEST
# Exit 0 when all passed, 1 when one failed, 77 (skipped) when that compiler has no OpenMP.
set -u
src=$1 bin=$2 cc=$3 cmake=$4 ctest=$5
"$cmake" -S "$src" -B "$bin" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release >"$bin.configure.log" 2>&1 \
  || { cat "$bin.configure.log"; echo "configuring tests/omp with $cc failed"; exit 1; }
"$cmake" --build "$bin" >"$bin.build.log" 2>&1 || { cat "$bin.build.log"; echo "building tests/omp with $cc failed"; exit 1; }
if [ ! -x "$bin/test_omp" ]; then
  echo "SKIP: $cc has no OpenMP (for clang: apt-get install libomp-dev)"
  exit 77
fi
cd "$bin" && "$ctest" --output-on-failure -j2
