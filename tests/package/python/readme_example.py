# The Python example for README.md, verbatim below this line (run by tests/package/run.sh).
import ctypes, ctypes.util, os, sys
from ctypes import CFUNCTYPE, c_double, c_int, c_size_t, c_void_p, c_char_p

# The library: $SHAREDMEM_LIB (its path), else $SHAREDMEM_PREFIX/lib (the install prefix), else the
# loader's search path (LD_LIBRARY_PATH, ldconfig).
path = os.environ.get("SHAREDMEM_LIB") or (
    os.path.join(os.environ["SHAREDMEM_PREFIX"], "lib", "libsharedmem.so.0")
    if os.environ.get("SHAREDMEM_PREFIX") else ctypes.util.find_library("sharedmem"))
if not path:
    sys.exit("libsharedmem not found: set SHAREDMEM_LIB=/path/to/libsharedmem.so.0 "
             "or SHAREDMEM_PREFIX=<the install prefix>")
lib = ctypes.CDLL(path)
callback = CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p)   # int (*)(void *ctx, size_t job, void *result)
lib.sm_pool_new.restype = c_void_p
lib.sm_pool_free.argtypes = [c_void_p]
lib.sm_map.argtypes = [c_void_p, c_size_t, callback, callback, c_size_t, c_void_p]
lib.sm_last_error.restype = c_char_p

@callback
def work(ctx, job, result):                                 # runs in a forked worker
    c_double.from_address(result).value = float(job) ** 2   # handed to reduce
    return 0

total = 0.0
@callback
def reduce(ctx, job, result):                               # in the caller, in job order
    global total
    total += c_double.from_address(result).value
    return 0

pool = lib.sm_pool_new(2, 0)                                # 2 workers, SM_BACKEND_PROCESS
status = lib.sm_map(pool, 1000, work, reduce, ctypes.sizeof(c_double), None)
lib.sm_pool_free(pool)
if status != 0:
    sys.exit(lib.sm_last_error().decode())
print(f"sum = {total:.0f}")
