#!/usr/bin/env bash
# Memory checks: the C test suite (tests/c) against the real release library
# (target/release/libsharedmem.so), under
#   asan      AddressSanitizer + LeakSanitizer: the test programs built with gcc -fsanitize=address
#             in build-asan/.  The Rust code is not instrumented (that needs a nightly toolchain),
#             but the ASan runtime replaces malloc/free/memcpy/... for the whole process, so it also
#             catches the library's invalid or double frees and bad copies into C memory, and
#             LeakSanitizer, at the test program's exit, the memory the library leaks.
#   memcheck  valgrind memcheck: the test programs built normally in build-memcheck/, every access of
#             the C and the Rust code checked, in the test program and in its forked workers.
#   rust-memcheck  the Rust tests (cargo test --release --lib --tests) under valgrind memcheck the
#             same way (stable toolchain; argsort_props with 300 of its 4000 cases in CI).
#   rust-asan `full` only, when a nightly toolchain is installed: cargo test with
#             -Zsanitizer=address (the Rust code instrumented).  Skipped, with a note, otherwise.
#
#   scripts/sanitize.sh [ci]          the subset CI runs (the last step of scripts/test.sh)
#   scripts/sanitize.sh full [REGEX]  every test under both checkers, about 10 minutes on 2 CPUs;
#                                     REGEX (a ctest -R regex, e.g. 'c\.region') narrows it
#
# Every report fails the test it came from, and is printed after ctest's output (the logs stay in
# build-*/sanitizer-logs/).  Ends with "N passed, M failed" (test runs, all checkers together)
# and exits nonzero when M > 0.  Installs valgrind and gcc's ASan runtime with apt-get when missing.
# Skipped tests and their reasons are below (ASAN_SKIP, MEMCHECK_SKIP); the suppressions, for test
# harness memory and deliberate crashes only, are in tests/sanitize/.
set -euo pipefail

# ---------------------------------------------------------------------------------------------------
# What runs: ctest regexes over the names of tests/c (c.<area>.<backend>).
# ---------------------------------------------------------------------------------------------------

# Not test programs of the library: c.header_* run the compiler on the header, c.argsort_numpy is
# python (through ctypes).  Run by scripts/test.sh's ctest, never under a checker.
NOT_PROGRAMS='^c\.header_|^c\.argsort_numpy$'

# Skipped under ASan, each for a limit of the sanitizer, not of the library:
#  - Forks while another thread of the caller allocates: the ASan runtime of gcc 12 (and of clang
#    before 18) does not lock its allocator around fork(), so a child forked while another thread
#    holds an allocator mutex hangs at its first malloc.  Seen, with the child's stack in
#    SizeClassAllocator64::GetFromAllocator: c.nested.process 1 run in 10, c.forksafety.process 1 in
#    15, c.forkchild_threads.* in every run; the persistent backend forks at sm_pool_new, which
#    c.forksafety.persistent and c.concurrent.persistent do beside allocating threads.  glibc's
#    malloc, which the library runs on, takes its locks around fork.  These run under memcheck instead.
#  - test_leaks (c.leaks.*) requires mallopt(M_ARENA_MAX, 1) to succeed, which ASan does not
#    implement, and compares /proc/self/maps line counts, which ASan's allocator changes (+6 lines
#    over 300 thread pools: per-thread regions and bookkeeping it keeps).
#  - c.limits_as: an RLIMIT_AS a little above the current address space, while ASan reserves
#    terabytes of shadow memory.
ASAN_SKIP='^c\.(forksafety\.(process|persistent)|forkchild_threads\..*|nested\.(process|thread)|concurrent\.(process|persistent)|leaks\..*|limits_as)$'
# ... and, in CI only, the slowest (argsort of up to 10^7 keys, 42 MB files, 2*10^5 x 4 KiB results).
ASAN_CI_SKIP='^c\.(argsort\.(process|thread|serial|null)|argsort_env5\.null|fromfile\.(process|thread)|window_big\..*)$'

# Skipped under memcheck: valgrind runs one thread at a time, 20-50x slower, with its own mappings.
#  - Past their watchdogs: c.concurrent.* (3 threads hammering malloc beside 500 maps: 7 s natively),
#    c.leaks.process/thread (10^4 / 10^5 maps), c.argsort.process/thread/serial (10^6..10^7 keys;
#    c.argsort.null and c.argsort_env5.null run, and argsort-small below), c.forkchild_threads.*
#    (400 forks of a multi-threaded caller, ~0.15 s each: forkchild-threads-40 below instead).
#  - c.leaks.serial and c.limits_as: they count or limit the address space, of which valgrind's
#    own mappings are part.
MEMCHECK_SKIP='^c\.(concurrent\..*|leaks\..*|argsort\.(process|thread|serial)|forkchild_threads\..*|limits_as)$'
# The CI subset: the thread backend of every area but the big-data ones, the process backend
# (jobs in forked workers, each under memcheck) and the serial backend of the core areas.
MEMCHECK_CI='^c\.((basic|backend|stop|critical|ordered|misuse|nested|invalid|children|crash|map_ex|region|region_faults|region_interrupt|progress|debug_api|dynamic|defaults|argsort_invalid|interrupt_thread_sigint)\.thread|(basic|backend|stop|ordered|nested|invalid|crash|map_ex|misuse)\.process|(basic|invalid|map_ex|region)\.serial|(basic|stop|crash|map_ex|region)\.persistent|header)$'
# Runs outside ctest, with smaller arguments than tests/c registers ("name|program args").
MEMCHECK_CI_EXTRA=(
  "forkchild-threads-40.thread|test_forkchild thread threads 40"
)
MEMCHECK_FULL_EXTRA=(
  "forkchild-threads-40.process|test_forkchild process threads 40"
  "forkchild-threads-40.thread|test_forkchild thread threads 40"
  "forkchild-threads-40.serial|test_forkchild serial threads 40"
  "argsort-small.process|test_argsort process sort 0/12"
  "argsort-small.thread|test_argsort thread sort 1/12"
  "argsort-small.serial|test_argsort serial sort 2/12"
)

# ---------------------------------------------------------------------------------------------------

step() { echo; echo "==> $*"; }

passed=0
failed=0
failed_names=()

# tag PROGRAM ARGS...: the name run-under.sh gives the logs of one run.
tag() {
  local prog=${1##*/}
  shift
  printf '%s' "$prog $*" | tr -c 'A-Za-z0-9_.-' '_' | sed 's/_*$//'
}

# configure DIR CHECKER [cmake args...]: tests/c on its own (against target/release), every test
# program run through tests/sanitize/run-under.sh CHECKER.
configure() {
  local dir=$1 checker=$2
  shift 2
  local cache="$dir/CMakeCache.txt"
  if [ -f "$cache" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root/tests/c" "$cache"; then
    rm -rf "$dir"
  fi
  cmake -S tests/c -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CROSSCOMPILING_EMULATOR=/bin/sh;$root/tests/sanitize/run-under.sh;$checker" "$@" >/dev/null
}

# findings CHECKER LOGDIR TAG: prints the reports in the logs of one test run (nothing if clean).
findings() {
  local checker=$1 logdir=$2 tag=$3 f ids
  shopt -s nullglob
  case "$checker" in
    asan)
      # <tag>.<main pid>-asan.<pid>, written only when there is something to say.
      for f in "$logdir/$tag".*-asan.*; do
        if grep -q "ERROR: \(AddressSanitizer\|LeakSanitizer\)" "$f"; then
          echo "--- ${f##*/}"
          head -n 80 "$f"
        fi
      done
      ;;
    memcheck)
      # <tag>.<main pid>-<pid>.log: memory errors in any process; definite leaks in the test program
      # itself only (a forked process has only the forking thread: what the others held looks lost).
      for f in "$logdir/$tag".*.log; do
        ids=${f%.log}
        ids=${ids##*.}
        if grep -q "ERROR SUMMARY: [1-9]" "$f" ||
          { [ "${ids%-*}" = "${ids#*-}" ] && grep -q "definitely lost: [1-9]" "$f"; }; then
          echo "--- ${f##*/}"
          head -n 120 "$f"
        fi
      done
      ;;
  esac
  shopt -u nullglob
}

# count NAME TEST STATUS FINDINGS: adds one test run to the totals.
count() {
  local name=$1 test=$2 st=$3 found=$4
  if [ -n "$found" ]; then
    echo
    echo "*** $name: $test: sanitizer reports:"
    echo "$found"
  fi
  if [ -z "$found" ] && [ "$st" = Passed ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$name: $test (${st:-no result}${found:+, sanitizer reports})")
  fi
}

# run_pass NAME DIR CHECKER INCLUDE_REGEX EXCLUDE_REGEX: ctest in DIR, then the reports of each test.
run_pass() {
  local name=$1 dir=$2 checker=$3 include=$4 exclude=$5
  local logdir="$root/$dir/sanitizer-logs" out="$root/$dir/sanitize-ctest.out"
  local sel=(-E "$exclude")
  [ -n "$include" ] && sel+=(-R "$include")
  local t0=$SECONDS p0=$passed f0=$failed
  echo "ctest -j $jobs --timeout 600 ${sel[*]}"
  (cd "$dir" && SM_SAN_LOGDIR="$logdir" ctest -j "$jobs" --timeout 600 --output-on-failure "${sel[@]}") \
    2>&1 | tee "$out" || true
  # The outcome of each test, from ctest's lines "12/60 Test #7: c.stop.thread ....   Passed  1.0 sec".
  local status
  status=$(sed -n 's/^ *[0-9]*\/[0-9]* *Test *#[0-9]*: \([^ ]*\) \.*[ *]*\(.*[^ ]\) \+[0-9.]\+ sec$/\1\t\2/p' "$out")
  # Each test's command (/bin/sh run-under.sh CHECKER PROGRAM ARGS...), for the names of its logs.
  local list
  list=$(cd "$dir" && ctest -N -V "${sel[@]}" | awk '
    /^ *Test +#[0-9]+: / { n = $0; sub(/^ *Test +#/, "", n); num = n; sub(/:.*/, "", num);
                           sub(/^[0-9]+: /, "", n); sub(/ \(Disabled\)$/, "", n); name[num] = n }
    /^[0-9]+: Test command: / { num = $1; sub(/:$/, "", num); c = $0; sub(/^[0-9]+: Test command: /, "", c);
                                gsub(/"/, "", c); cmd[num] = c }
    END { for (k in name) if (k in cmd) print name[k] "\t" cmd[k] }' | sort)
  local tname tcmd st found
  while IFS=$'\t' read -r tname tcmd; do
    [ -n "$tname" ] || continue
    st=$(awk -F'\t' -v t="$tname" '$1 == t { print $2 }' <<<"$status")
    case "$st" in
      Skipped | "Not Run (Disabled)") echo "(not counted: $tname: $st)"; continue ;;
    esac
    found=""
    # shellcheck disable=SC2086 # the command's words (no spaces inside arguments)
    set -- $tcmd
    [ "${1##*/}" = sh ] && shift
    if [ "${1##*/}" = run-under.sh ]; then
      shift 2
      found=$(findings "$checker" "$logdir" "$(tag "$@")")
    fi
    count "$name" "$tname" "$st" "$found"
  done <<<"$list"
  echo "--- $name: $((passed - p0)) passed, $((failed - f0)) failed ($((SECONDS - t0)) s)"
}

# run_extra NAME DIR CHECKER "TEST|PROGRAM ARGS"...: runs outside ctest, one after the other.
run_extra() {
  local name=$1 dir=$2 checker=$3
  shift 3
  local logdir="$root/$dir/sanitizer-logs" entry test rc st t0
  for entry in "$@"; do
    test=${entry%%|*}
    # shellcheck disable=SC2086 # program and arguments
    set -- ${entry#*|}
    t0=$SECONDS
    echo "$name: $test: run-under.sh $checker $*"
    rc=0
    (cd "$dir" && env -u SM_DEBUG -u OMP_NUM_THREADS SM_SAN_LOGDIR="$logdir" \
      timeout 600 /bin/sh "$root/tests/sanitize/run-under.sh" "$checker" "./$1" "${@:2}") \
      >"$logdir/$test.out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then st=Passed; else st="Failed (exit status $rc)"; cat "$logdir/$test.out"; fi
    echo "  $st ($((SECONDS - t0)) s)"
    count "$name" "$test" "$st" "$(findings "$checker" "$logdir" "$(tag "$@")")"
  done
}

# run_cargo_memcheck CASES: cargo test --release (library unit tests and tests/*.rs) with every test
# binary run through run-under.sh memcheck; CASES: the number of argsort_props cases ("" = its own).
run_cargo_memcheck() {
  local cases=$1
  local logdir="$root/target/sanitize-memcheck-logs" out="$root/target/sanitize-memcheck-cargo.out"
  rm -rf "$logdir"
  mkdir -p "$logdir"
  local host runner t0=$SECONDS p0=$passed f0=$failed
  host=$(rustc -vV | sed -n 's/^host: //p')
  runner="CARGO_TARGET_$(echo "$host" | tr 'a-z.-' 'A-Z__')_RUNNER"
  echo "$runner=\"/bin/sh tests/sanitize/run-under.sh memcheck\"${cases:+ ARGSORT_PROPS_CASES=$cases}" \
    "cargo test --release --no-fail-fast --lib --tests"
  (
    [ -n "$cases" ] && export ARGSORT_PROPS_CASES="$cases"
    env "$runner=/bin/sh $root/tests/sanitize/run-under.sh memcheck" SM_SAN_LOGDIR="$logdir" \
      cargo test --release --no-fail-fast --lib --tests
  ) 2>&1 | tee "$out" || true
  # Each test binary: "Running tests/api.rs (target/release/deps/api-<hash>)", then its result.
  local bin res
  while IFS=$'\t' read -r bin res; do
    [ -n "$bin" ] || continue
    count rust-memcheck "$bin" "$res" "$(findings memcheck "$logdir" "$bin")"
  done < <(awk '
    /^ *Running / && /\(target\// { b = $0; sub(/.*\//, "", b); sub(/\)$/, "", b); bins[++n] = b; res[b] = "no result" }
    /^test result: ok\./ && n { res[bins[n]] = "Passed" }
    /^test result: FAILED/ && n { res[bins[n]] = "Failed" }
    END { for (i = 1; i <= n; i++) print bins[i] "\t" res[bins[i]] }' "$out")
  if [ "$passed" -eq "$p0" ] && [ "$failed" -eq "$f0" ]; then
    count rust-memcheck "cargo test" "Failed (no test binary ran)" ""
  fi
  echo "--- rust-memcheck: $((passed - p0)) passed, $((failed - f0)) failed ($((SECONDS - t0)) s)"
}

main() {
  cd "$(dirname "$0")/.."
  # shellcheck source=scripts/common.sh
  . scripts/common.sh
  root=$PWD
  local mode=${1:-ci} filter=${2:-}
  case "$mode" in
    ci) [ -z "$filter" ] || { echo "usage: scripts/sanitize.sh [ci | full [CTEST_REGEX]]" >&2; exit 2; } ;;
    full) ;;
    *) echo "usage: scripts/sanitize.sh [ci | full [CTEST_REGEX]]" >&2; exit 2 ;;
  esac

  ensure_tools cmake:cmake cc:gcc gcc:gcc valgrind:valgrind
  ensure_cargo
  # gcc's -fsanitize=address needs its runtime (libasan8 for gcc 12, which libgcc-12-dev pulls in).
  local probe
  probe=$(mktemp -d)
  echo 'int main(void) { return 0; }' >"$probe/p.c"
  if ! gcc -fsanitize=address "$probe/p.c" -o "$probe/p" 2>/dev/null; then
    local pkg="libgcc-$(gcc -dumpversion | cut -d. -f1)-dev"
    echo "==> installing $pkg (gcc's AddressSanitizer runtime)"
    apt_install "$pkg"
  fi
  rm -rf "$probe"
  jobs="$(nproc 2>/dev/null || echo 2)"

  step "cargo build --release (the library the tests load: target/release/libsharedmem.so)"
  cargo build --release

  # -----------------------------------------------------------------------------------------------
  step "asan: build-asan/ (tests/c with gcc -fsanitize=address)"
  configure build-asan asan \
    "-DCMAKE_C_FLAGS=-fsanitize=address -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address"
  cmake --build build-asan -j "$jobs" >/dev/null
  rm -rf build-asan/sanitizer-logs
  mkdir -p build-asan/sanitizer-logs
  step "asan: ctest ($mode)"
  # handle_segv/sigbus/sigfpe=0: tests crash jobs on purpose and check the signal that killed them.
  # allocator_may_return_null=1: test_invalid asks for 2^62-byte result buffers and expects an
  #   error from the library, as with glibc's malloc (NULL), not an abort of the process.
  export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:allocator_may_return_null=1"
  export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
  local skip="$NOT_PROGRAMS|$ASAN_SKIP"
  [ "$mode" = ci ] && skip="$skip|$ASAN_CI_SKIP"
  run_pass asan build-asan asan "$filter" "$skip"
  unset ASAN_OPTIONS LSAN_OPTIONS

  # -----------------------------------------------------------------------------------------------
  step "memcheck: build-memcheck/ (tests/c, normal build, run under valgrind)"
  configure build-memcheck memcheck
  cmake --build build-memcheck -j "$jobs" >/dev/null
  rm -rf build-memcheck/sanitizer-logs
  mkdir -p build-memcheck/sanitizer-logs
  step "memcheck: ctest ($mode)"
  local include=$filter
  [ "$mode" = ci ] && include=$MEMCHECK_CI
  run_pass memcheck build-memcheck memcheck "$include" "$NOT_PROGRAMS|$MEMCHECK_SKIP"
  if [ -z "$filter" ]; then
    step "memcheck: runs with smaller arguments ($mode)"
    if [ "$mode" = ci ]; then
      run_extra memcheck build-memcheck memcheck "${MEMCHECK_CI_EXTRA[@]}"
    else
      run_extra memcheck build-memcheck memcheck "${MEMCHECK_FULL_EXTRA[@]}"
    fi
  fi

  # -----------------------------------------------------------------------------------------------
  if [ -z "$filter" ]; then
    step "rust-memcheck: the Rust tests under valgrind memcheck ($mode)"
    if [ "$mode" = ci ]; then run_cargo_memcheck 300; else run_cargo_memcheck ""; fi
  fi

  # -----------------------------------------------------------------------------------------------
  if [ "$mode" = full ] && [ -z "$filter" ]; then
    step "rust-asan: cargo +nightly test with -Zsanitizer=address"
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
      local t0=$SECONDS
      # --test-threads=1: the tests fork workers (see ASAN_SKIP about forks beside other threads).
      if RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        ASAN_OPTIONS="detect_leaks=1:handle_segv=0:allocator_may_return_null=1" \
        cargo +nightly test --target "$(rustc -vV | sed -n 's/^host: //p')" \
        --target-dir target/sanitize-asan --lib --tests -- --test-threads=1; then
        count rust-asan "cargo test" Passed ""
      else
        count rust-asan "cargo test" Failed ""
      fi
      echo "--- rust-asan: $((SECONDS - t0)) s"
    else
      echo "no nightly toolchain (rustup toolchain install nightly): skipped"
    fi
  fi

  echo
  if [ "$failed" -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failed_names[@]}"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# All of the script is read before it runs (main is called on the last line), so editing it
# while it runs does not change what runs.
main "$@"
