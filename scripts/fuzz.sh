#!/usr/bin/env bash
# Fuzzing (issue 6): builds the libFuzzer targets of fuzz/ and runs each for SECONDS.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 30 s each, targets argsort and api)
#
#   argsort  sm_argsort on fuzzed keys against a reference stable argsort (numpy's order)
#   api      fuzzed sequences of calls to every exported function: argument validation
#
# Works on the stable toolchain: the coverage instrumentation cargo-fuzz would add is passed as
# stable -C flags, and libFuzzer itself comes from the libfuzzer-sys crate (built with c++).
# (With nightly and cargo-fuzz, `cd fuzz && cargo fuzz run api` works as well.)
# Corpora grow in fuzz/corpus/TARGET (kept between runs); a finding is written to
# fuzz/artifacts/TARGET/ and makes this script exit nonzero; rerun it with
#   fuzz/target/<host>/release/TARGET fuzz/artifacts/TARGET/<file>
# (SM_FUZZ_TRACE=1 prints each call). SM_FUZZ_KNOWN=name,... (or all) skips library bugs already
# reported (see fuzz/fuzz_targets/api.rs); by default every check is on.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

seconds="${1:-30}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(argsort api)

ensure_tools c++:g++
ensure_cargo
host="$(rustc -vV | sed -n 's/^host: //p')"

# What `cargo fuzz build --sanitizer none` passes (sancov instrumentation for libFuzzer), plus
# debug assertions and overflow checks in the library. --target keeps these flags off build
# scripts and proc macros (cbindgen), which are not linked with libFuzzer.
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
flags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
flags+=" -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
locked=()
[ -f fuzz/Cargo.lock ] && locked=(--locked)
echo "==> building fuzz targets (cargo build --release --target $host, sancov flags)"
start=$SECONDS
(cd fuzz && env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS RUSTFLAGS="$flags" \
  cargo build --release "${locked[@]}" --target "$host" --target-dir target --bins)
echo "    built in $((SECONDS - start)) s"

bin="fuzz/target/$host/release"
status=0
summary=()
for t in "${targets[@]}"; do
  case "$t" in
    argsort) max_len=4096 ;;
    *) max_len=1024 ;;
  esac
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t.log"
  echo "==> fuzzing $t for $seconds s (log: $log)"
  rc=0
  "$bin/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  if [ "$rc" -eq 0 ]; then
    line="$t: ${execs:-?} executions in $seconds s, coverage ${cov:-?} edges, corpus $corpus inputs: no finding"
  else
    status=1
    line="$t: FINDING after ${execs:-?} executions (libFuzzer exit $rc)"
    echo "---- $t: end of $log"
    grep -v '^#[0-9]\|^INFO\|^ *[0-9]*: \|^ *at ' "$log" | tail -25
    artifact="$(sed -n "s/.*Test unit written to \(.*\)/\1/p" "$log" | tail -1)"
    [ -n "$artifact" ] && echo "---- reproduce: $bin/$t $artifact"
  fi
  echo "    $line"
  summary+=("$line")
done
echo
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit "$status"
