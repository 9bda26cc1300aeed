#!/usr/bin/env python3
"""sm_argsort against numpy.argsort(keys, kind='stable'), through ctypes on the built library.

Every dtype, on random / sorted / reversed / all-equal / few-distinct / extreme / skewed / dominant /
small-range data, numpy's own sort benchmark shapes (sorted blocks, swapped pairs, unsorted areas),
non-increasing data with ties, and (floats) uniform, NaN/inf/-0.0 mixes, NaN-heavy, all-zero and
all-NaN data, at n = 0..3, around the library's thresholds (32, 32768, ...) and at 300001 (presorted
shapes with tens of thousands of outliers); the NULL pool and process, thread and
serial pools of 1, 2, 3 and 8 workers; keys aligned and at an odd byte offset. Results must be
identical. (tests/c/test_argsort.c covers every pool x every case against a C reference; this
checks that the reference and the library agree with numpy itself.)

    argsort_numpy.py /path/to/libsharedmem.so

Exits 77 (ctest SKIP_RETURN_CODE) with a message when numpy is not installed; 1 on a mismatch.
"""
import ctypes
import sys

SKIP = 77

try:
    import numpy as np
except ImportError as e:  # never a silent pass: ctest shows the test as skipped, with this reason
    print(f"SKIP: numpy is not available ({e}); install it (pip install numpy) to compare "
          "sm_argsort with numpy.argsort(kind='stable')")
    sys.exit(SKIP)

if len(sys.argv) != 2:
    print(f"usage: {sys.argv[0]} /path/to/libsharedmem.so", file=sys.stderr)
    sys.exit(2)

lib = ctypes.CDLL(sys.argv[1])
lib.sm_argsort.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
lib.sm_argsort.restype = ctypes.c_int
lib.sm_pool_new.argtypes = [ctypes.c_int, ctypes.c_int]
lib.sm_pool_new.restype = ctypes.c_void_p
lib.sm_pool_free.argtypes = [ctypes.c_void_p]
lib.sm_pool_free.restype = None
lib.sm_last_error.argtypes = []
lib.sm_last_error.restype = ctypes.c_char_p

# sm_dtype values, in header order
DTYPES = [
    (0, np.float64), (1, np.float32), (2, np.int64), (3, np.int32), (4, np.int16),
    (5, np.int8), (6, np.uint64), (7, np.uint32), (8, np.uint16), (9, np.uint8),
]
BACKENDS = {"process": 0, "thread": 1, "serial": 2}

SIZES = [0, 1, 2, 3, 4, 7, 31, 32, 33, 64, 257, 1000, 4097, 32767, 32769, 65537, 300001]
SMALL_N = 4096

rng = np.random.default_rng(20240611)


def bits_uint(dt):
    return np.dtype(f"u{np.dtype(dt).itemsize}")


def random_bits(dt, n):
    u = bits_uint(dt)
    return rng.integers(0, np.iinfo(u).max, size=n, dtype=u, endpoint=True).view(dt)


def specials(dt):
    f = np.finfo(dt)
    vals = np.array([-np.inf, -f.max, -1.0, -f.tiny, -f.smallest_subnormal, -0.0, 0.0,
                     f.smallest_subnormal, f.tiny, 1.0, f.max, np.inf, np.nan, -np.nan], dtype=dt)
    u = bits_uint(dt)
    nbits = 8 * np.dtype(dt).itemsize
    if nbits == 64:
        nans = np.array([0x7FF0000000000001, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0xFFF8000000000000], dtype=u)
    else:
        nans = np.array([0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFC00000], dtype=u)
    return np.concatenate([vals, nans.view(dt)])


def extremes(dt):
    i = np.iinfo(dt)
    if i.min < 0:
        return np.array([i.min, i.min + 1, -1, 0, 1, i.max - 1, i.max], dtype=dt)
    return np.array([0, 1, 2, i.max // 2, i.max // 2 + 1, i.max - 1, i.max], dtype=dt)


def mixed(dt, n):
    """floats: specials, small integers (±0), fractions; ints: random bits and extremes"""
    if np.dtype(dt).kind == "f":
        choice = rng.integers(0, 10, size=n)
        out = (rng.random(n) - 0.5) * 1e6
        small = rng.integers(-4, 5, size=n).astype(np.float64)
        small[(small == 0) & (rng.integers(0, 2, size=n) == 1)] = -0.0
        out = np.where(choice < 6, small, out).astype(dt)
        sp = specials(dt)
        pick = choice < 3
        out[pick] = sp[rng.integers(0, len(sp), size=int(pick.sum()))]
        return out
    out = random_bits(dt, n)
    pick = rng.integers(0, 4, size=n) == 0
    ex = extremes(dt)
    out[pick] = ex[rng.integers(0, len(ex), size=int(pick.sum()))]
    return out


def gen(dist, dt, n):
    isf = np.dtype(dt).kind == "f"
    if dist == "random":
        return random_bits(dt, n)
    if dist == "sorted":
        return np.sort(mixed(dt, n), kind="stable")
    if dist == "reversed":
        return np.sort(mixed(dt, n), kind="stable")[::-1].copy()
    if dist == "equal":
        return np.full(n, mixed(dt, 1)[0], dtype=dt)
    if dist == "few":
        vals = mixed(dt, int(rng.integers(2, 6)))
        return vals[rng.integers(0, len(vals), size=n)]
    if dist == "extreme":
        vals = specials(dt) if isf else extremes(dt)
        return vals[rng.integers(0, len(vals), size=n)]
    if dist == "skew":
        if isf:
            out = (1000.0 + 0.25 * rng.integers(0, 1000, size=n)).astype(dt)
        else:
            base = int(random_bits(bits_uint(dt), 1)[0])
            span = 4 if np.dtype(dt).itemsize == 1 else 1000
            u = bits_uint(dt)
            out = ((base + rng.integers(0, span, size=n).astype(np.uint64)) & np.uint64(np.iinfo(u).max))
            out = out.astype(u).view(dt)
        pick = rng.integers(0, 100, size=n) == 0
        out[pick] = mixed(dt, int(pick.sum()))
        return out
    if dist == "dominant":
        out = np.full(n, mixed(dt, 1)[0], dtype=dt)
        pick = rng.integers(0, 20, size=n) == 0
        out[pick] = mixed(dt, int(pick.sum()))
        return out
    if dist == "smallrange":
        r = n // 8 + 1
        v = rng.integers(0, r, size=n)
        if isf or np.iinfo(dt).min < 0:
            v = v - r // 2
        if isf:
            out = v.astype(dt)
            out[(v == 0) & (rng.integers(0, 2, size=n) == 1)] = -0.0
            return out
        return v.astype(dt)
    if dist == "uniform01":
        return rng.random(n).astype(dt)
    if dist == "specials":
        return mixed(dt, n)
    if dist == "nanheavy":
        out = mixed(dt, n)
        pick = rng.integers(0, 10, size=n) < 6
        sp = specials(dt)
        nans = sp[np.isnan(sp)]
        out[pick] = nans[rng.integers(0, len(nans), size=int(pick.sum()))]
        return out
    if dist == "zeros":
        return np.where(rng.integers(0, 2, size=n) == 1, -0.0, 0.0).astype(dt)
    if dist == "allnan":
        nans = specials(dt)
        nans = nans[np.isnan(nans)]
        return nans[rng.integers(0, len(nans), size=n)]
    # numpy's own sort benchmark shapes (SortGenerator in benchmarks/benchmarks/bench_function_base.py),
    # on sorted mixed values (ties, and for floats specials, NaN, -0.0) instead of arange
    if dist in ("sorted_block", "swapped_pair", "unsorted_area", "nonincreasing_ties"):
        base = np.sort(mixed(dt, n), kind="stable")
        if n == 0:
            return base
        if dist == "sorted_block":
            block = int(rng.choice([10, 100, 1000]))
            if n < block:
                return base
            return np.concatenate([base[i::n // block] for i in range(n // block)])
        if dist == "swapped_pair":
            for x, y in rng.integers(0, n, size=(max(1, int(n * rng.choice([0.01, 0.1, 0.5]))), 2)):
                base[x], base[y] = base[y], base[x]
            return base
        if dist == "unsorted_area":
            area = min(100, n)
            for s in rng.integers(0, n - area + 1, size=max(1, int(n * rng.choice([0.5, 0.1, 0.01]) / area))):
                base[s:s + area] = rng.permutation(base[s:s + area])
            return base
        # non-increasing with runs of equal keys (the reversal must keep each run in input order)
        return np.sort(base[rng.integers(0, max(1, n // 7), size=n)], kind="stable")[::-1].copy()
    raise ValueError(dist)


PRESORTED = ["sorted_block", "swapped_pair", "unsorted_area", "nonincreasing_ties"]
INT_DISTS = ["random", "sorted", "reversed", "equal", "few", "extreme", "skew", "dominant", "smallrange"] + PRESORTED
FLOAT_DISTS = INT_DISTS + ["uniform01", "specials", "nanheavy", "zeros", "allnan"]


def main():
    pools = [("NULL pool", None)]
    made = []
    for bname, w in (("process", 1), ("thread", 2), ("serial", 3), ("thread", 8), ("process", 3)):
        p = lib.sm_pool_new(w, BACKENDS[bname])
        if not p:
            print(f"sm_pool_new({w}, {bname}) failed: {lib.sm_last_error().decode()}")
            return 1
        made.append(p)
        pools.append((f"{bname} {w}-worker pool", p))
    ncalls = 0
    nlarge = 0
    for code, dt in DTYPES:
        isf = np.dtype(dt).kind == "f"
        for dist in (FLOAT_DISTS if isf else INT_DISTS):
            for n in SIZES:
                keys = np.ascontiguousarray(gen(dist, dt, n), dtype=dt)
                assert keys.shape == (n,), (dist, dt, n, keys.shape)
                expected = np.argsort(keys, kind="stable")
                # keys at an odd byte offset of a bytes buffer (numpy handles unaligned views)
                raw = bytearray(keys.nbytes + 8)
                odd = np.frombuffer(raw, dtype=dt, count=n, offset=1 + 2 * (n % 4))
                odd[...] = keys
                if n <= SMALL_N:
                    chosen = pools
                else:  # large: one pool, rotating
                    chosen = [pools[nlarge % len(pools)]]
                    nlarge += 1
                for pi, (pname, p) in enumerate(chosen):
                    src = odd if (pi + n) % 2 else keys
                    out = np.full(n + 2, -7, dtype=np.int64)
                    st = lib.sm_argsort(p, src.ctypes.data if n else None, n, code,
                                        out.ctypes.data + 8 if n else None)
                    ncalls += 1
                    what = (f"sm_argsort({pname}, {np.dtype(dt).name}, {dist}, n = {n}, "
                            f"{'odd offset' if src is odd else 'aligned'})")
                    if st != 0:
                        print(f"{what} returned status {st}: {lib.sm_last_error().decode()}")
                        return 1
                    got = out[1:n + 1]
                    if out[0] != -7 or out[n + 1] != -7:
                        print(f"{what} wrote outside out[0..n)")
                        return 1
                    if not np.array_equal(got, expected):
                        i = int(np.nonzero(got != expected)[0][0])
                        print(f"{what} differs from numpy.argsort(kind='stable') at out[{i}]: "
                              f"numpy {expected[i]} (key {keys[expected[i]]!r}), "
                              f"sm_argsort {got[i]} (key {keys[got[i]] if 0 <= got[i] < n else 'out of range'!r})")
                        if n <= 40:
                            print(f"  keys     {keys.tolist()}\n  numpy    {expected.tolist()}\n"
                                  f"  sm_argsort {got.tolist()}")
                        return 1
                    if src.tobytes() != keys.tobytes():
                        print(f"{what} modified the keys")
                        return 1
        print(f"{np.dtype(dt).name}: identical to numpy.argsort(kind='stable')")
    for p in made:
        lib.sm_pool_free(p)
    print(f"numpy {np.__version__}: {ncalls} sm_argsort calls, all identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
