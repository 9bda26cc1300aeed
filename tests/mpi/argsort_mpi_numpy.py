#!/usr/bin/env python3
"""The numpy oracle of sm_mpi_argsort: runs test_mpisort writing its cases to DIR, then checks them.

    argsort_mpi_numpy.py DIR LAUNCHER ARGS... test_mpisort DIR

For every case of DIR/cases.txt ("name dtype n description"): the concatenated output of every
rank (name.out) must equal numpy.argsort(keys, kind='stable') of the concatenated keys (name.keys),
and the keys permuted by sm_mpi_permute (name.sorted) must equal keys[numpy's argsort], byte for
byte (NaN included). Exits 77 (ctest SKIP_RETURN_CODE) when numpy is missing, 1 on a mismatch or
when there is no case to check.
"""
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError as e:
    print(f"SKIP: numpy is not available ({e}); install it to compare sm_mpi_argsort with numpy")
    sys.exit(77)

DTYPES = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "i32": np.int32,
          "i16": np.int16, "i8": np.int8, "u64": np.uint64, "u32": np.uint32,
          "u16": np.uint16, "u8": np.uint8}

d = sys.argv[1]
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)
rc = subprocess.call(sys.argv[2:])
if rc != 0:
    print(f"FAIL: {' '.join(sys.argv[2:])} exited with {rc}")
    sys.exit(1)
cases = [line.split(maxsplit=3) for line in open(os.path.join(d, "cases.txt")) if line.strip()]
if not cases:
    print("FAIL: test_mpisort wrote no case")
    sys.exit(1)
bad = 0
for name, dtype, n, what in cases:
    path = lambda ext: os.path.join(d, f"{name}.{ext}")
    keys = np.fromfile(path("keys"), dtype=DTYPES[dtype])
    out = np.fromfile(path("out"), dtype=np.int64)
    permuted = np.fromfile(path("sorted"), dtype=np.uint8)
    assert keys.size == int(n) == out.size, (name, keys.size, n, out.size)
    want = np.argsort(keys, kind="stable")
    if not np.array_equal(out, want):
        i = int(np.flatnonzero(out != want)[0])
        print(f"FAIL {what}: position {i}: sm_mpi_argsort {out[i]}, numpy {want[i]}")
        bad += 1
    elif not np.array_equal(permuted, keys[want].view(np.uint8)):
        print(f"FAIL {what}: sm_mpi_permute(keys, out) differs from keys[argsort]")
        bad += 1
    for ext in ("keys", "out", "sorted"):
        os.remove(path(ext))
shutil.rmtree(d, ignore_errors=True)
print(f"{len(cases) - bad} of {len(cases)} cases equal numpy.argsort(kind='stable')")
sys.exit(1 if bad else 0)
