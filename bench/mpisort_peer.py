"""The mpsort peer of the issue-15 benchmark (scripts/bench-mpisort.sh runs it).

    mpirun -np 4 python3 bench/mpisort_peer.py KEYDIR NLOCAL RUNS

Reads, on each rank, the keys bench/mpisort_bench.c wrote for every case (KEYDIR/CASE.keys.RANK,
NLOCAL 8-byte items; CASE starts with float64- or int64-) and sorts (key, index) pairs with
mpsort over MPI_COMM_WORLD: a structured numpy array of 16-byte records, in place, the index
being the key's global index (rank offset + local position). Two ways:

  key    the issue's spec: fields key (8 bytes) and index (int64), mpsort.sort(data,
         orderby='key'): sorted by key alone (mpsort's radix sort makes no promise for ties);
  exact  one field key of two uint64, [index, key] (mpsort: "the latter elements in a row have
         more significance"), mpsort.sort(data, orderby='key'): sorted by (key, index), the
         order sm_mpi_argsort returns (numpy's stable argsort).

mpsort sorts integer keys only (int32/uint32/int64/uint64). int64 keys are used as they are in
"key" (as uint64 with the sign bit flipped in "exact", where both words must have one type);
float64 keys go through the monotone map of their bits to uint64 (negative: all bits flipped;
otherwise: sign bit set), which orders them as the floats (-0.0 would come before +0.0, and
NaNs apart, neither of which the benchmark's keys have). Building the records (and the map) is
done before the timing; each timed run sorts a fresh copy of them.

Timing as in the C program: MPI_Barrier, then MPI.Wtime around the one mpsort.sort call, the
maximum over the ranks (allreduce MAX); median [min .. max] of RUNS runs after one warm-up.
Checked once per case and way, on rank 0 (any failure exits nonzero): the keys come out
non-decreasing over the concatenation, the index field is a permutation with key[i] the
original key of index[i]; for "exact" the index order must also equal sm_mpi_argsort's output
(KEYDIR/CASE.out.RANK). Prints "peer CASE WAY median min max" (seconds) and "check ..." lines.
"""
import glob
import os
import sys

import numpy as np
from mpi4py import MPI

import mpsort

SIGN = np.uint64(1 << 63)


def ordered_u8(keys):
    """A monotone map of int64 or float64 keys to uint64."""
    if keys.dtype == np.float64:
        b = keys.view(np.uint64)
        neg = (b >> np.uint64(63)).astype(bool)
        return np.where(neg, ~b, b | SIGN)
    return keys.view(np.uint64) ^ SIGN


def records(keys, index, way):
    if way == "key":
        ktype = np.int64 if keys.dtype == np.int64 else np.uint64
        data = np.empty(len(keys), dtype=[("key", ktype), ("index", np.int64)])
        data["key"] = keys if keys.dtype == np.int64 else ordered_u8(keys)
        data["index"] = index
    else:
        data = np.empty(len(keys), dtype=[("key", np.uint64, (2,))])
        data["key"][:, 0] = index.astype(np.uint64)
        data["key"][:, 1] = ordered_u8(keys)
    return data


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    keydir, nlocal, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if rank == 0:
        print("mpsort", mpsort.__version__, "numpy", np.__version__, "mpi4py",
              sys.modules["mpi4py"].__version__, flush=True)
    cases = sorted({os.path.basename(p)[: -len(".keys.0")]
                    for p in glob.glob(os.path.join(keydir, "*.keys.0"))})
    order = {"uniform": 0, "powerlaw": 1, "fewvalues": 2}
    cases.sort(key=lambda c: (not c.startswith("float64"), order.get(c.split("-", 1)[1], 9)))
    for case in cases:
        dtype = np.float64 if case.startswith("float64") else np.int64
        keys = np.fromfile(os.path.join(keydir, f"{case}.keys.{rank}"), dtype=dtype)
        if len(keys) != nlocal:
            raise SystemExit(f"rank {rank}: {case}: {len(keys)} keys, expected {nlocal}")
        index = np.arange(rank * nlocal, (rank + 1) * nlocal, dtype=np.int64)
        for way in ("key", "exact"):
            template = records(keys, index, way)
            times = []
            for run in range(-1, runs):
                data = template.copy()
                comm.Barrier()
                t0 = MPI.Wtime()
                mpsort.sort(data, orderby="key", comm=comm)
                t = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
                if run >= 0:
                    times.append(t)
                else:
                    check(comm, case, way, keys, data, keydir)
            times.sort()
            if rank == 0:
                print(f"peer {case} {way} {times[len(times) // 2]:.6f} {times[0]:.6f} "
                      f"{times[-1]:.6f}", flush=True)


def check(comm, case, way, keys, data, keydir):
    rank = comm.rank
    all_keys = comm.gather(keys, root=0)
    all_data = comm.gather(data, root=0)
    outs = None
    if way == "exact":
        outs = comm.gather(np.fromfile(os.path.join(keydir, f"{case}.out.{rank}"),
                                       dtype=np.int64), root=0)
    bad = ""
    if rank == 0:
        k = np.concatenate(all_keys)
        d = np.concatenate(all_data)
        n = len(k)
        if way == "key":
            idx, skey = d["index"], d["key"]
            mapped = k if k.dtype == np.int64 else ordered_u8(k)
        else:
            idx, skey = d["key"][:, 0].astype(np.int64), d["key"][:, 1]
            mapped = ordered_u8(k)
        if len(d) != n:
            bad = f"{len(d)} records, expected {n}"
        elif np.any(skey[1:] < skey[:-1]):
            bad = "keys not in order"
        elif idx.min() < 0 or idx.max() >= n or np.bincount(idx, minlength=n).max() != 1:
            bad = "index is not a permutation"
        elif np.any(mapped[idx] != skey):
            bad = "key[i] is not the key of index[i]"
        elif way == "exact" and not np.array_equal(idx, np.concatenate(outs)):
            bad = "order differs from sm_mpi_argsort's output"
        if bad:
            print(f"check peer {case} {way} FAILED: {bad}", file=sys.stderr, flush=True)
        else:
            ties = int(np.count_nonzero((skey[1:] == skey[:-1]) & (idx[1:] < idx[:-1])))
            extra = (f"; {ties} adjacent equal keys out of index order" if way == "key"
                     else "; identical to sm_mpi_argsort's output")
            print(f"check peer {case} {way} ok ({n} records sorted{extra})", flush=True)
    bad = comm.bcast(bad, root=0)
    if bad:
        comm.Abort(1)


if __name__ == "__main__":
    main()
