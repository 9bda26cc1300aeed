#!/usr/bin/env bash
# Soak test (issue 6): random maps for MINUTES, every result checked (soak/soak.c).
#
#   scripts/soak.sh MINUTES [SEED]        (MINUTES may be fractional: 0.75)
#
# Random backends (process, persistent, thread, serial), 1-6 workers, 0-5000 jobs, results of
# 0-4096 bytes, with and without reduce, SM_STOP, job errors, reduce stopping, worker processes
# killed (SIGKILL, SIGSEGV, abort, _exit; process and persistent pools), critical and ordered
# sections, sm_map_ex with per-worker results and copied ctx, sm_parallel regions; checks every
# status, message and result, that no child process is left after a call (live persistent pool
# zygotes aside), that persistent pools keep their worker processes and leave no zombie worker,
# and that fds, mappings and threads do not grow. Prints the rounds by outcome; exits nonzero on
# a mismatch, printing how to rerun that round alone (target/soak/soak 0 SEED ROUND).
# SOAK_ROUND_TIMEOUT (seconds, default 120) bounds one round: a hang is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

if [ $# -lt 1 ]; then
  echo "usage: scripts/soak.sh MINUTES [SEED]" >&2
  exit 2
fi
ensure_tools cc:gcc
ensure_cargo
echo "==> cargo build --release (the library)"
cargo build --release --target-dir target
mkdir -p target/soak
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -Itests/c soak/soak.c \
  target/release/libsharedmem.so -Wl,-rpath,"$PWD/target/release" -o target/soak/soak
echo "==> soak for $1 minutes"
exec target/soak/soak "$@"
