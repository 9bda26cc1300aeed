#!/usr/bin/env python3
"""Python (ctypes) consumer of an INSTALLED libsharedmem.so: the C API as another language sees it.

    python3 ctypes_test.py /prefix/lib/libsharedmem.so      (or SHAREDMEM_LIB=/prefix/lib/...)

Python callbacks run as sm_map's work in forked workers (the process backend): fork copies the
interpreter, and ctypes.CDLL releases the GIL for the duration of sm_map, so in a single-threaded
program the GIL is free at fork time and each child's callback takes it as usual. Whatever a job
writes to Python objects stays in its child; only results and sm_empty memory come back. reduce runs
in the caller, so it can update Python variables.

GIL rules found here (all checked below, except the hang):
  - CDLL (GIL released during sm_map): every backend works in a single-threaded program; the thread
    backend works in any program (each worker thread takes the GIL in turn: no speed-up for Python
    work). But a process map while ANOTHER Python thread runs can hang forever: that thread may
    hold the GIL at the fork, and the children then wait for it (sm_map cannot tell: they are alive).
  - PyDLL (GIL held during sm_map): process and serial maps work, also with other threads running;
    thread-backend maps deadlock (the workers wait for the GIL the caller holds).

Prints "PYTHON OK" and exits 0 when every check passes; otherwise names the failed checks and exits
1. docs/julia.md makes the same calls from Julia.
"""
import ctypes
import math
import os
import signal
import sys
import threading
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_double, c_int, c_int64, c_size_t, c_void_p)

# --- The C API (include/sharedmem.h) ---------------------------------------------------------
SM_OK, SM_STOPPED, SM_ERR_INVALID, SM_ERR_NOMEM, SM_ERR_JOB, SM_ERR_WORKER_DIED = 0, 1, 2, 3, 4, 5
SM_ERR_STATE = 7
SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL, SM_BACKEND_PERSISTENT = 0, 1, 2, 3
SM_DTYPE_F64 = 0
SM_STOP = 1398034256

# int (*)(void *ctx, size_t job, void *result), for work and reduce alike
sm_callback = CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p)


def load(path, dll=ctypes.CDLL):
    # CDLL: the GIL is released while a C function runs; PyDLL: it is held (see the threads check)
    lib = dll(path)
    lib.sm_pool_new.argtypes = [c_int, c_int]
    lib.sm_pool_new.restype = c_void_p
    lib.sm_pool_free.argtypes = [c_void_p]
    lib.sm_pool_free.restype = None
    lib.sm_pool_nworkers.argtypes = [c_void_p]
    lib.sm_pool_nworkers.restype = c_int
    lib.sm_map.argtypes = [c_void_p, c_size_t, sm_callback, sm_callback, c_size_t, c_void_p]
    lib.sm_map.restype = c_int
    lib.sm_critical_enter.argtypes = [c_void_p]
    lib.sm_critical_enter.restype = c_int
    lib.sm_critical_leave.argtypes = [c_void_p]
    lib.sm_critical_leave.restype = c_int
    lib.sm_worker_id.argtypes = []
    lib.sm_worker_id.restype = c_int
    lib.sm_empty.argtypes = [c_size_t, c_size_t]
    lib.sm_empty.restype = c_void_p
    lib.sm_free.argtypes = [c_void_p]
    lib.sm_free.restype = None
    lib.sm_argsort.argtypes = [c_void_p, c_void_p, c_size_t, c_int, POINTER(c_int64)]
    lib.sm_argsort.restype = c_int
    lib.sm_last_error.argtypes = []
    lib.sm_last_error.restype = c_char_p
    lib.sm_status_str.argtypes = [c_int]
    lib.sm_status_str.restype = c_char_p
    return lib


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SHAREDMEM_LIB")
    if not path:
        print("usage: ctypes_test.py /path/to/libsharedmem.so (or SHAREDMEM_LIB)", file=sys.stderr)
        return 2
    lib = load(path)
    signal.alarm(120)  # a hang (e.g. a worker blocked on the GIL) fails the test instead of blocking it
    # SM_DEBUG=1 makes every map serial in the caller: the fork-only checks are skipped then.
    debug = os.environ.get("SM_DEBUG", "").strip() not in ("", "0")

    def last_error():
        return lib.sm_last_error().decode()

    def status_str(s):
        return lib.sm_status_str(s).decode()

    pool = lib.sm_pool_new(2, SM_BACKEND_PROCESS)
    if not pool:
        print("sm_pool_new:", last_error(), file=sys.stderr)
        return 1
    check(lib.sm_pool_nworkers(pool) == 2, "sm_pool_nworkers == 2")

    njobs = 1000
    expect = sum(j * j for j in range(njobs))  # 332833500
    # Shared memory: job j writes squares[j] in its worker; the caller sees it after the map.
    squares_ptr = lib.sm_empty(njobs, ctypes.sizeof(c_double))
    check(bool(squares_ptr), "sm_empty: " + last_error())
    squares = (c_double * njobs).from_address(squares_ptr)

    # --- a map with a work and a reduce callback, on the process backend ---
    @sm_callback
    def work(ctx, job, result):  # runs in a forked worker
        value = float(job * job)
        squares[job] = value
        ctypes.cast(result, POINTER(c_double))[0] = value
        return 0

    state = {"sum": 0.0, "next": 0, "in_order": True, "pids": set()}

    @sm_callback
    def reduce(ctx, job, result):  # runs in the caller, in job order
        if job != state["next"]:
            state["in_order"] = False
        state["next"] += 1
        state["sum"] += ctypes.cast(result, POINTER(c_double))[0]
        return 0

    s = lib.sm_map(pool, njobs, work, reduce, ctypes.sizeof(c_double), None)
    check(s == SM_OK, "sm_map: %s: %s" % (status_str(s), last_error()))
    check(state["sum"] == expect, "sum %r != %r" % (state["sum"], expect))
    check(state["in_order"] and state["next"] == njobs, "reduce in job order, once per job")
    check(all(squares[j] == j * j for j in range(njobs)), "sm_empty memory written by the workers")

    # The jobs ran in other processes: their pids come back through the results.
    @sm_callback
    def work_pid(ctx, job, result):
        ctypes.cast(result, POINTER(c_int64))[0] = os.getpid()
        return 0

    @sm_callback
    def reduce_pid(ctx, job, result):
        state["pids"].add(ctypes.cast(result, POINTER(c_int64))[0])
        return 0

    s = lib.sm_map(pool, 200, work_pid, reduce_pid, 8, None)
    check(s == SM_OK and (debug or os.getpid() not in state["pids"]), "jobs run in forked workers")

    # --- the critical section, around a read-modify-write of a shared counter ---
    counter_ptr = lib.sm_empty(1, 8)
    counter = c_int64.from_address(counter_ptr)

    @sm_callback
    def work_count(ctx, job, result):
        if lib.sm_critical_enter(pool) != SM_OK:
            return 1
        seen = counter.value
        counter.value = seen + 1
        return 0 if lib.sm_critical_leave(pool) == SM_OK else 1

    s = lib.sm_map(pool, 500, work_count, sm_callback(), 0, None)  # sm_callback(): a NULL reduce
    check(s == SM_OK and counter.value == 500, "critical: %s, counter %d" % (status_str(s), counter.value))

    # --- a job that fails: SM_ERR_JOB, the message names the job; every earlier job reduced ---
    failing = 500
    state["reduced"] = 0

    @sm_callback
    def work_fail(ctx, job, result):
        return 7 if job == failing else 0

    @sm_callback
    def reduce_count(ctx, job, result):
        state["reduced"] += 1
        return 0

    s = lib.sm_map(pool, njobs, work_fail, reduce_count, 8, None)
    message = last_error()
    check(s == SM_ERR_JOB, "job error: status %d" % s)
    check(status_str(s).startswith("SM_ERR_JOB"), "sm_status_str: " + status_str(s))
    check("job %d" % failing in message and "7" in message, "sm_last_error: " + message)
    check(state["reduced"] == failing, "reduced %d jobs before the failure" % state["reduced"])

    # A Python exception must not escape a callback: ctypes prints it and returns an unspecified
    # value (garbage: it was 5485 in one run, and could as well be 0 or SM_STOP). Catch it and
    # return an error code.
    @sm_callback
    def work_raises(ctx, job, result):
        try:
            if job == 3:
                raise ValueError("job 3 is bad")
            return 0
        except Exception:
            return 99

    s = lib.sm_map(pool, 10, work_raises, sm_callback(), 0, None)
    check(s == SM_ERR_JOB and "99" in last_error(), "exception caught in a callback: " + last_error())

    # --- SM_STOP from a job: SM_STOPPED, reduced up to and including the stopping job ---
    state["reduced"] = 0

    @sm_callback
    def work_stop(ctx, job, result):
        return SM_STOP if job == 123 else 0

    s = lib.sm_map(pool, njobs, work_stop, reduce_count, 8, None)
    check(s == SM_STOPPED and state["reduced"] == 124, "SM_STOP: %s, reduced %d" % (status_str(s), state["reduced"]))

    # --- a worker that dies: SM_ERR_WORKER_DIED, the caller goes on ---
    @sm_callback
    def work_dies(ctx, job, result):
        if job == 5:
            os._exit(3)
        return 0

    if not debug:
        s = lib.sm_map(pool, 10, work_dies, sm_callback(), 0, None)
        check(s == SM_ERR_WORKER_DIED and "job 5" in last_error(), "worker died: " + last_error())

    # --- misuse: critical outside a job, a NULL pool ---
    check(lib.sm_critical_enter(pool) == SM_ERR_STATE, "sm_critical_enter outside a job")
    s = lib.sm_map(None, 1, work, sm_callback(), 0, None)
    check(s == SM_ERR_INVALID and last_error() != "", "sm_map(NULL pool): %d %s" % (s, last_error()))
    check(lib.sm_worker_id() == -1, "sm_worker_id outside a map")

    # --- threads and serial: the same callbacks (each worker thread takes the GIL in turn) ---
    for backend in (SM_BACKEND_THREAD, SM_BACKEND_SERIAL):
        other = lib.sm_pool_new(2, backend)
        state.update(sum=0.0, next=0, in_order=True)
        s = lib.sm_map(other, njobs, work, reduce, ctypes.sizeof(c_double), None)
        check(s == SM_OK and state["sum"] == expect and state["in_order"],
              "backend %d: %s %r" % (backend, status_str(s), state["sum"]))
        lib.sm_pool_free(other)

    # --- persistent workers have only the code loaded when their pool was made: a ctypes
    # callback (a closure generated at run time) is refused, clearly, before anything runs ---
    resident = lib.sm_pool_new(2, SM_BACKEND_PERSISTENT)
    check(bool(resident), "sm_pool_new(persistent): " + last_error())
    if resident:
        state.update(sum=0.0, next=0, in_order=True)
        s = lib.sm_map(resident, njobs, work, reduce, ctypes.sizeof(c_double), None)
        msg = last_error()
        check(s == SM_ERR_INVALID and "ctypes" in msg and state["next"] == 0,
              "persistent pool, ctypes callback: %s %r (reduced %d)" % (status_str(s), msg, state["next"]))
        lib.sm_pool_free(resident)

    # --- a Python program with other threads running ---
    # With CDLL, sm_map releases the GIL; another Python thread may hold it at the moment of the
    # fork, and then the forked workers wait forever for a GIL whose holder does not exist in them
    # (sm_map hangs: the workers are alive, just blocked). PyDLL keeps the GIL held by the caller
    # through sm_map, so the children inherit it held by their only thread: process maps work.
    # (PyDLL must not be used for thread-backend maps: the worker threads would wait for the GIL
    # that the caller keeps while it waits for them.)
    pylib = load(path, ctypes.PyDLL)
    busy = {"stop": False, "spins": 0}

    def spin():
        while not busy["stop"]:
            busy["spins"] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        state.update(sum=0.0, next=0, in_order=True)
        for _ in range(10):
            state.update(sum=0.0, next=0)
            s = pylib.sm_map(pool, njobs, work, reduce, ctypes.sizeof(c_double), None)
            check(s == SM_OK and state["sum"] == expect, "PyDLL map with a busy thread: %s" % status_str(s))
    finally:
        busy["stop"] = True
        spinner.join()

    # --- argsort (numpy's stable order, NaN last) ---
    keys = (c_double * 6)(3.0, math.nan, -1.0, 3.0, 0.5, -math.inf)
    order = (c_int64 * 6)()
    s = lib.sm_argsort(pool, keys, 6, SM_DTYPE_F64, order)
    check(s == SM_OK and list(order) == [5, 2, 4, 0, 3, 1], "sm_argsort: %s %r" % (status_str(s), list(order)))

    lib.sm_free(squares_ptr)
    lib.sm_free(counter_ptr)
    lib.sm_pool_free(pool)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("PYTHON OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
