"""numpy's matmul (its bundled or the system's BLAS, threaded) in the caller and inside
process-backend jobs, through ctypes (issue 11): no hang, results equal to the caller's, and the
BLAS thread count inside the jobs at most cpus / workers when sharedmem can see the library.

    python3 numpy_matmul.py /path/to/libsharedmem.so

Exit 77 (skipped) without numpy."""
import ctypes
import os
import re
import sys
from ctypes import CFUNCTYPE, c_double, c_int, c_size_t, c_void_p, c_char_p

try:
    import numpy as np
except ImportError:
    print("SKIP: no numpy for this python3")
    sys.exit(77)

lib = ctypes.CDLL(sys.argv[1])
callback = CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p)
lib.sm_pool_new.restype = c_void_p
lib.sm_pool_free.argtypes = [c_void_p]
lib.sm_map.argtypes = [c_void_p, c_size_t, callback, callback, c_size_t, c_void_p]
lib.sm_last_error.restype = c_char_p

NJOBS, N, WORKERS = 8, 200, 2


def matrices(job):
    rs = np.random.RandomState(job)
    return rs.rand(N, N), rs.rand(N, N)


def blas_threads():
    """The thread count of the OpenBLAS numpy uses, read through its own getter (None if the
    library or the getter cannot be found)."""
    with open("/proc/self/maps") as f:
        paths = {m.group(1) for m in re.finditer(r"(/\S*openblas\S*\.so\S*)", f.read())}
    for path in sorted(paths):
        blas = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            getter = getattr(blas, name, None)
            if getter is not None:
                getter.restype = c_int
                return getter()
    return None


# the caller uses BLAS first (numpy's OpenBLAS starts its threads)
expected = [float(np.sum(a @ b)) for a, b in (matrices(j) for j in range(NJOBS))]
before = blas_threads()

results = np.zeros(NJOBS)  # copied into each forked worker: the sums come back through reduce
threads = np.zeros(NJOBS)


@callback
def work(ctx, job, result):
    a, b = matrices(job)
    c_double.from_address(result).value = float(np.sum(a @ b))
    t = blas_threads()
    c_double.from_address(result + 8).value = -1.0 if t is None else float(t)
    return 0


@callback
def reduce(ctx, job, result):
    results[job] = c_double.from_address(result).value
    threads[job] = c_double.from_address(result + 8).value
    return 0


pool = lib.sm_pool_new(WORKERS, 0)  # SM_BACKEND_PROCESS
for m in range(20):
    status = lib.sm_map(pool, NJOBS, work, reduce, 16, None)
    if status != 0:
        sys.exit("map %d: %s" % (m, lib.sm_last_error().decode()))
    if not np.allclose(results, np.array(expected), rtol=1e-12, atol=0):
        sys.exit("map %d: matmul in the jobs %s differs from the caller's %s" % (m, results, expected))
    share = max(1, len(os.sched_getaffinity(0)) // WORKERS)
    if before is not None and any(t > min(share, before) or t < 1 for t in threads):
        sys.exit("map %d: OpenBLAS threads in the jobs %s, expected at most %d" % (m, threads, share))
lib.sm_pool_free(pool)
after = blas_threads()
if after != before:
    sys.exit("the caller's OpenBLAS threads changed from %s to %s" % (before, after))
print("numpy matmul in jobs: ok (OpenBLAS threads: caller %s, jobs %s)" % (before, sorted(set(threads))))
