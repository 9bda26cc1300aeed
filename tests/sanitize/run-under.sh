#!/bin/sh
# ctest "emulator" of scripts/sanitize.sh: runs one C test program under a checker.
#
#   run-under.sh asan|memcheck PROGRAM [ARGS...]
#
# scripts/sanitize.sh configures its build directories with
# CMAKE_CROSSCOMPILING_EMULATOR="/bin/sh;<this file>;asan" (or ";memcheck"; CMake up to 3.28 puts the
# emulator in front of every add_test() command that runs a built program, and so does a later CMake
# for tests/c, which leaves policy CMP0158 unset), so ctest runs every test program of tests/c through
# this script, with the test's own arguments and environment.  The script execs the program (no shell
# stays in between: signals sent to the test's process or process group, exit statuses and the parent
# pid are the program's own), and only decides where the reports go, one file per process (the test
# program, its forked workers and subprocesses), tag = program + arguments, e.g. test_basic_thread:
#
#   asan:     $SM_SAN_LOGDIR/<tag>.<main pid>-asan.<pid>   (written only when there is a report)
#   memcheck: $SM_SAN_LOGDIR/<tag>.<main pid>-<pid>.log
#
# scripts/sanitize.sh reads these files after ctest and fails the test they belong to on any report.
set -eu
kind=$1
shift
: "${SM_SAN_LOGDIR:?run-under.sh is run by scripts/sanitize.sh, which sets SM_SAN_LOGDIR}"
here=$(cd "$(dirname "$0")" && pwd)
# The tag: program name and arguments, e.g. test_argsort_thread_sort_1_3.
tag=$(printf '%s' "$(basename "$1") $(shift; echo "$*")" | tr -c 'A-Za-z0-9_.-' '_' | sed 's/_*$//')
main=$$ # exec keeps the pid: the test program's pid is this shell's

case "$kind" in
  asan)
    # AddressSanitizer reads ASAN_OPTIONS when the program starts; scripts/sanitize.sh sets the
    # rest of it (see there).  log_path appends ".<pid>" per process.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$SM_SAN_LOGDIR/$tag.$main-asan"
    exec "$@"
    ;;
  memcheck)
    # --error-exitcode: a memory error fails the program (in a forked worker it shows as a dead
    #   worker, which fails the test too); scripts/sanitize.sh also reads every log.
    # Leaks are listed (definite ones only) but are not errors here: a forked worker or subprocess
    #   has only the thread that forked, so whatever the caller's other threads hold looks lost
    #   there.  scripts/sanitize.sh counts "definitely lost" in the test program's own log only.
    # --fair-sched=yes: valgrind runs one thread at a time; with the default (unfair) lock a thread
    #   spinning on a futex word can starve the thread it waits for.
    # --child-silent-after-fork=no (the default): forked workers run under memcheck too, and report.
    # SM_HEAP_SIZE: the library makes no shared heap under valgrind unless asked (the leak check
    #   reads every page of it at every exit); a small one keeps the heap's code under test.
    export SM_HEAP_SIZE="${SM_HEAP_SIZE:-64M}"
    exec valgrind --tool=memcheck --error-exitcode=99 \
      --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none \
      --fair-sched=yes --num-callers=40 \
      --suppressions="$here/valgrind.supp" \
      ${SM_VALGRIND_EXTRA:-} \
      --log-file="$SM_SAN_LOGDIR/$tag.$main-%p.log" "$@"
    ;;
  *)
    echo "run-under.sh: unknown checker '$kind' (asan or memcheck)" >&2
    exit 2
    ;;
esac
