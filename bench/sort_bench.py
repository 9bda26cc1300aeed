#!/usr/bin/env python3
"""sharedmem sort/fromfile benchmark: the driver (and the numpy side).

Not a test: it never decides pass/fail of the test suite.  Run it through scripts/bench-sort.sh,
which builds bench/sort_bench.cpp, forces 2 workers/threads and writes bench/RESULTS-sort.md.

    python3 bench/sort_bench.py --bin BUILD/sharedmem_sort_bench      # the whole benchmark

prints a markdown report on stdout (progress on stderr).  It

* generates the keys of every case once (numpy PCG64, fixed seed) into a file in a temporary
  directory ($TMPDIR or /tmp), so every system sorts the same keys;
* runs every measurement in a fresh process (the C++ program, or this script with --child), so
  the memory peak of one sorter never mixes with another: each child loads the keys, allocates
  and touches its output, resets the peak RSS (echo 5 > /proc/self/clear_refs), sorts, and
  reports extra = VmHWM - VmRSS before the sort (numpy allocates its output inside argsort, so
  numpy's 8n output bytes are subtracted);
* checks every result exactly: std::stable_sort's permutation is the reference (written to a
  file by its first run); every other system's output must be byte-equal to it, and every C++
  output is also checked to be a permutation that is sorted with ties in increasing index order;
* runs sm_argsort and numpy.argsort(kind='stable') on numpy's own sort benchmark inputs
  (SortGenerator: random, ordered, reversed, uniform, sorted_block(10/100/1000),
  swapped_pair(0.01/0.1/0.5), random_unsorted_area(0.5/0.1/0.01)), float64 and int64, n = 10^6 and
  10^7 (numpy writes the reference there), and puts a summary table with the targets first;
* times sm_fromfile of a 2 GB file against a sequential read() loop and numpy.fromfile with the
  page cache warm, and checks every word read;
* interleaves the systems (round-robin, rotating start) so machine noise hits them alike;
* waits (up to SM_SORT_BENCH_QUIET_WAIT s, default 180) for other processes to use <= 10% of the
  CPUs before it starts, records the other load of every case, and runs a case again (once, keeping
  the quieter attempt) when other processes used > 10% of the CPUs during it, while the whole run
  is younger than RETRY_BUDGET.

Environment (for development only; the report says when they are set):
  SM_SORT_BENCH_SIZES   comma list of n (default 1000000,10000000,50000000)
  SM_SORT_BENCH_FILE_GB size of the fromfile test file in GB (default 2)
  SM_SORT_BENCH_PRESORTED_SIZES  comma list of n for numpy's inputs (default 1000000,10000000)

Exit status: 0 = complete and every result correct; 2 = complete, but a sharedmem call failed or a
result was wrong (see "Problems"); 124 = a child hung (watchdog); 1 = could not run.
"""

import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

NW = 2
SEED = 12345
WORD_MUL = 0x9E3779B97F4A7C15
CHILD_TIMEOUT = 300  # seconds per child process (watchdog)
RETRY_BUDGET = 480  # seconds: a disturbed case is re-run only while the run is younger than this

problems = []


def log(msg):
    print("bench-sort: " + msg, file=sys.stderr, flush=True)


def problem(msg):
    log("PROBLEM: " + msg)
    problems.append(msg)


# --------------------------------------------------------------------------- memory (children)


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


# --------------------------------------------------------------------------- numpy children


def child_argsort(dtype, n, keyfile, reffile, refmode="check"):
    import numpy as np

    dt = {"f64": np.float64, "i64": np.int64}[dtype]
    keys = np.fromfile(keyfile, dtype=dt)
    assert keys.size == n, (keys.size, n)
    rss0 = status_kb("VmRSS")
    reset_peak()
    hwm0 = status_kb("VmHWM")
    t0 = time.perf_counter()
    out = np.argsort(keys, kind="stable")
    t = time.perf_counter() - t0
    hwm1 = status_kb("VmHWM")
    rss1 = status_kb("VmRSS")
    extra = (hwm1 - rss0) * 1024 - out.nbytes  # numpy's output array is not "extra"
    bad = None
    if out.dtype != np.int64 or out.size != n:
        bad = "numpy returned %s[%d]" % (out.dtype, out.size)
    elif refmode == "write":
        out.tofile(reffile)  # the reference of the presorted cases (the C++ side checks it too)
    else:
        ref = np.fromfile(reffile, dtype=np.int64)
        if ref.size != n:
            bad = "reference file has %d entries, expected %d" % (ref.size, n)
        elif not np.array_equal(out, ref):
            i = int(np.flatnonzero(out != ref)[0])
            bad = "differs from the reference at position %d: %d vs reference %d" % (i, out[i], ref[i])
    print("RESULT time=%.6f rss0_kb=%d hwm0_kb=%d hwm1_kb=%d rss1_kb=%d extra_bytes=%d threads=1 ok=%d"
          % (t, rss0, hwm0, hwm1, rss1, extra, 0 if bad else 1), flush=True)
    if bad:
        print("PROBLEM " + bad, flush=True)
    return 2 if bad else 0


def child_fromfile(path):
    import numpy as np

    t0 = time.perf_counter()
    a = np.fromfile(path, dtype=np.uint64)
    t = time.perf_counter() - t0
    bad = None
    nbytes = os.path.getsize(path)
    if a.nbytes != nbytes:
        bad = "numpy.fromfile read %d bytes, file has %d" % (a.nbytes, nbytes)
    else:
        chunk = 1 << 24
        with np.errstate(over="ignore"):
            for s in range(0, a.size, chunk):
                e = min(a.size, s + chunk)
                want = np.arange(s, e, dtype=np.uint64) * np.uint64(WORD_MUL)
                if not np.array_equal(a[s:e], want):
                    i = s + int(np.flatnonzero(a[s:e] != want)[0])
                    bad = "numpy.fromfile: word %d is wrong" % i
                    break
    print("RESULT time=%.6f bytes=%d ok=%d" % (t, nbytes, 0 if bad else 1), flush=True)
    if bad:
        print("PROBLEM " + bad, flush=True)
    return 2 if bad else 0


# --------------------------------------------------------------------------- driver helpers


class Hang(Exception):
    pass


def record_run(cell, r):
    """Adds one run's answer (None if the child failed) to a table cell: its time and extra
    memory, and whether every run of the cell was exact."""
    if r is None or r.get("ok") != "1":
        cell["ok"] = False
    if r is not None:
        cell["times"].append(float(r["time"]))
        cell["extra"].append(int(r["extra_bytes"]))


def run_child(argv, what):
    """Runs one measurement process; returns the RESULT dict or None (problem recorded)."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Hang("%s did not finish within %d s (hang?)" % (what, CHILD_TIMEOUT))
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = {}
            for kv in line.split()[1:]:
                k, v = kv.split("=", 1)
                res[k] = v
        elif line.startswith("PROBLEM "):
            problem("%s: %s" % (what, line[8:]))
        elif line.startswith("ERROR "):
            problem("%s: %s" % (what, line[6:]))
    err = p.stderr.strip()
    if err:
        # a benchmark child should print nothing on stderr: show what the library (or numpy) printed
        shown = "; ".join(err.splitlines()[:6])
        stray.setdefault(what.split(",")[0], shown)
    if p.returncode not in (0, 2):
        problem("%s: exit status %d%s" % (what, p.returncode, (" (stderr: %s)" % err[-300:]) if err else ""))
        return None
    if res is None:
        problem("%s: no RESULT line" % what)
    return res


stray = {}  # system -> first stderr output seen


def read_cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / hz
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return {"busy": busy, "steal": v[7] / hz, "total": sum(v) / hz, "own": own}


def load_line(a, b):
    total = b["total"] - a["total"]
    if total <= 0:
        return "- other load during the run: unknown", False
    other = max(0.0, (b["busy"] - a["busy"]) - (b["own"] - a["own"]))
    pct, steal = 100 * other / total, 100 * (b["steal"] - a["steal"]) / total
    quiet = pct <= 10 and steal <= 10
    return ("- other load during the run: other processes used %.1f%% of all CPU time, hypervisor steal %.1f%%%s"
            % (pct, steal, " (quiet machine)" if quiet
               else " -- **the machine was not quiet: numbers are disturbed; re-run**")), quiet


def other_load_pct(a, b):
    total = b["total"] - a["total"]
    if total <= 0:
        return 0.0
    return 100 * max(0.0, (b["busy"] - a["busy"]) - (b["own"] - a["own"])) / total


def wait_for_quiet(max_wait):
    """Waits (up to max_wait s) until other processes use <= 10% of the CPUs over 3 s; returns the last %."""
    t0 = time.time()
    while True:
        a = read_cpu_stat()
        time.sleep(3)
        pct = other_load_pct(a, read_cpu_stat())
        if pct <= 10 or time.time() - t0 >= max_wait:
            return pct
        log("other processes use %.0f%% of the CPUs; waiting for a quiet machine (up to %d s more)"
            % (pct, max_wait - (time.time() - t0)))


def thp(which):
    try:
        with open("/sys/kernel/mm/transparent_hugepage/" + which) as f:
            v = f.read().split()
        return next((x[1:-1] for x in v if x.startswith("[")), "?")
    except OSError:
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0


def cmd_out(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def fmt_n(n):
    if n % 10**7 == 0 and n // 10**7 in (1, 2, 5) and n > 10**7:
        return "%d·10^7" % (n // 10**7)
    e = len(str(n)) - 1
    if n == 10**e:
        return "10^%d" % e
    if n % 10**e == 0:
        return "%d·10^%d" % (n // 10**e, e)
    return str(n)


# --------------------------------------------------------------------------- key generation


DISTS = {
    ("f64", "uniform"): "float64 uniform in [0, 1) (`Generator.random`)",
    ("i64", "uniform"): "int64 uniform over the full range [-2^63, 2^63) (`Generator.integers`)",
    ("f64", "skewed"): "float64 `floor(exp(20 u))`, u uniform in [0, 1): log-uniform integers in [1, 4.9·10^8], "
                       "P(key <= v) = ln(v)/20, so the small values repeat very often",
    ("i64", "skewed"): "int64 Zipf, `Generator.zipf(1.5)`: 38% of the keys are 1, 13% are 2, ..., heavy tail",
}


def gen_keys(path, dtype, dist, n, case_id):
    import numpy as np

    rng = np.random.default_rng([SEED, case_id])
    if (dtype, dist) == ("f64", "uniform"):
        k = rng.random(n)
    elif (dtype, dist) == ("i64", "uniform"):
        k = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64, endpoint=True)
    elif (dtype, dist) == ("f64", "skewed"):
        k = rng.random(n)
        k *= 20.0
        np.exp(k, out=k)
        np.floor(k, out=k)
    else:
        k = rng.zipf(1.5, n).astype(np.int64)
    assert k.dtype == {"f64": np.float64, "i64": np.int64}[dtype]
    k.tofile(path)
    del k


# numpy's own sort benchmark inputs: benchmarks/benchmarks/bench_function_base.py, class SortGenerator
# (random, ordered, reversed, uniform, sorted_block, swapped_pair, random_unsorted_area with
# AREA_SIZE = 100), with every parameter its Sort benchmark lists (swapped_pair and
# random_unsorted_area are listed there, commented out, with these parameters).
PRESORTED = [
    ("random", None), ("ordered", None), ("reversed", None), ("uniform", None),
    ("sorted_block", 10), ("sorted_block", 100), ("sorted_block", 1000),
    ("swapped_pair", 0.01), ("swapped_pair", 0.1), ("swapped_pair", 0.5),
    ("random_unsorted_area", 0.5), ("random_unsorted_area", 0.1), ("random_unsorted_area", 0.01),
]


def presorted_name(kind, param):
    return kind if param is None else "%s(%g)" % (kind, param)


def gen_presorted(path, dtype, kind, param, n, seed):
    """numpy's SortGenerator.<kind>(n, dtype, param), with np.random.RandomState(seed) for its draws."""
    import numpy as np

    dt = {"f64": np.float64, "i64": np.int64}[dtype]
    rs = np.random.RandomState(seed)
    a = np.arange(n, dtype=dt)
    if kind == "random":
        rs.shuffle(a)
    elif kind == "reversed":
        a = np.arange(n - 1, -1, -1, dtype=dt)
    elif kind == "uniform":
        a = np.ones(n, dtype=dt)
    elif kind == "sorted_block":
        if n >= param:
            block_num = n // param
            a = np.concatenate([a[i::block_num] for i in range(block_num)])
    elif kind == "swapped_pair":
        xy = rs.randint(0, n, (int(n * param), 2))
        for x, y in xy.tolist():  # sequential swaps, as SortGenerator does them
            a[x], a[y] = a[y], a[x]
    elif kind == "random_unsorted_area":
        area = 100
        for start in rs.randint(n - area, size=int(n * param / area)).tolist():
            rs.shuffle(a[start:start + area])
    else:
        assert kind == "ordered", kind
    assert a.size == n and a.dtype == dt
    a.tofile(path)


def gen_words_file(path, nbytes):
    import numpy as np

    chunk = 1 << 23  # words
    nw = nbytes // 8
    with open(path, "wb") as f, np.errstate(over="ignore"):
        for s in range(0, nw, chunk):
            e = min(nw, s + chunk)
            (np.arange(s, e, dtype=np.uint64) * np.uint64(WORD_MUL)).tofile(f)
        f.flush()
        os.fsync(f.fileno())  # no writeback running while the readers are timed
    # warm the page cache: read it once
    buf = bytearray(64 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


# --------------------------------------------------------------------------- the benchmark


SYSTEMS = [  # key, label; std_stable first: its first run writes the reference permutation
    ("std_stable", "std::stable_sort of indices, 1 thread"),
    ("sm", "sm_argsort, 2 workers"),
    ("gnu_parallel", "`__gnu_parallel::stable_sort` of (key, index) pairs, 2 threads"),
    ("numpy", "numpy.argsort(kind='stable')"),
]


def argsort_cmd(binpath, system, dtype, n, keyfile, refmode, reffile):
    if system == "numpy":
        return [sys.executable, os.path.abspath(__file__), "--child", "argsort", dtype, str(n), keyfile, reffile,
                refmode]
    return [binpath, "argsort", system, dtype, str(n), keyfile, refmode, reffile]


def main_driver(binpath):
    import numpy as np

    quiet_pct = wait_for_quiet(float(os.environ.get("SM_SORT_BENCH_QUIET_WAIT", "180")))
    t_start = time.time()
    load0 = read_cpu_stat()
    sizes = [int(float(x)) for x in os.environ.get("SM_SORT_BENCH_SIZES", "1000000,10000000,50000000").split(",")]
    file_gb = float(os.environ.get("SM_SORT_BENCH_FILE_GB", "2"))
    file_bytes = int(file_gb * 1e9) // 8 * 8
    reps_for = lambda n: 3 if n <= 10**7 else 1  # noqa: E731
    pre_sizes = [int(float(x)) for x in
                 os.environ.get("SM_SORT_BENCH_PRESORTED_SIZES", "1000000,10000000").split(",") if x]

    base = os.environ.get("TMPDIR") or "/tmp"
    need = max(file_bytes, 0) + 2 * 8 * max(sizes) + (1 << 30)
    free = shutil.disk_usage(base).free
    if free < need:
        print("bench-sort: %s has %.1f GB free, the benchmark needs %.1f GB" % (base, free / 1e9, need / 1e9),
              file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="sm-sort-bench-", dir=base)

    info = dict(kv.split("=", 1) for kv in cmd_out([binpath, "info"]).split()[1:])
    out = []
    P = out.append
    P("- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))
    P("- nproc: %d online CPUs, %d usable by this process; memory %.1f GiB"
      % (os.cpu_count(), len(os.sched_getaffinity(0)), mem_total_gb()))
    P("- CPU: %s" % cpu_model())
    P("- kernel: %s %s %s" % (platform.system(), platform.release(), platform.machine()))
    P("- C++ peers: g++ %s, `-O3 -fopenmp` (OpenMP %s, libgomp), libstdc++ parallel mode "
      "(`__gnu_parallel::stable_sort` = multiway mergesort, parallel above sort_minimal_n = %s)"
      % (info.get("gcc", "?"), info.get("openmp", "?"), info.get("sort_minimal_n", "?")))
    P("- sharedmem: %s (cargo build --release), library commit %s%s"
      % (cmd_out(["rustc", "--version"]) or "rustc ?",
         cmd_out(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"]) or "?",
         " + uncommitted changes in src/" if cmd_out(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                                       "status", "--porcelain", "--", "../src"]) else ""))
    P("- numpy %s, Python %s" % (np.__version__, platform.python_version()))
    envs = ["OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE"]
    P("- environment: " + " ".join("%s=%s" % (e, os.environ.get(e, "(unset)")) for e in envs))
    for e in ("SM_SORT_BENCH_SIZES", "SM_SORT_BENCH_FILE_GB", "SM_SORT_BENCH_PRESORTED_SIZES"):
        if e in os.environ:
            P("- **%s=%s is set: not the standard run**" % (e, os.environ[e]))
    P("- temporary files in %s (%.0f GB free)" % (base, free / 1e9))

    P("- other load just before the start: %.0f%% of all CPU time (waited up to SM_SORT_BENCH_QUIET_WAIT, "
      "default 180 s, for <= 10%%)" % quiet_pct)
    results = {}  # (system, dtype, dist, n) -> dict(times, extra, ok, distinct)
    pre = {}  # (dtype, input name, n) -> ({system: cell}, other load %)
    case_load = {}  # (dtype, dist, n) -> other load %
    retried = []
    rc = 0
    try:
        def run_case(dtype, dist, n, case_id):
            """One case: every system on the same keys; returns ({system: cell}, other load %)."""
            keyfile = os.path.join(tmp, "keys.bin")
            reffile = os.path.join(tmp, "ref.bin")
            log("case %s %s n=%d: generating keys" % (dtype, dist, n))
            gen_keys(keyfile, dtype, dist, n, case_id)
            if os.path.exists(reffile):
                os.unlink(reffile)
            cl0 = read_cpu_stat()
            systems = [x for x, _ in SYSTEMS]
            cells = {x: {"times": [], "extra": [], "ok": True} for x in systems}
            ref_ok = False
            for rep in range(reps_for(n)):
                # round 0 starts with std_stable, whose run writes the reference permutation
                for k in range(len(systems)):
                    sy = systems[(k + rep) % len(systems)]
                    refmode = "write" if (sy == "std_stable" and not ref_ok) else "check"
                    what = "%s, %s %s n=%d, run %d" % (sy, dtype, dist, n, rep + 1)
                    r = run_child(argsort_cmd(binpath, sy, dtype, n, keyfile, refmode, reffile), what)
                    cell = cells[sy]
                    record_run(cell, r)
                    if r is not None:
                        if "distinct" in r:
                            cell["distinct"] = int(r["distinct"])
                        if sy == "std_stable" and r.get("ok") == "1":
                            ref_ok = True
                        log("%-58s %8.3f s, extra %8.1f MB%s" % (what, float(r["time"]), int(r["extra_bytes"]) / 1e6,
                                                                "" if r.get("ok") == "1" else "  WRONG"))
            # the parallel check: libstdc++ parallel mode with 1 thread, once, on float64 uniform 10^7
            if dtype == "f64" and dist == "uniform" and n == 10**7:
                what = "gnu_parallel_1t, %s %s n=%d" % (dtype, dist, n)
                r = run_child(argsort_cmd(binpath, "gnu_parallel_1t", dtype, n, keyfile, "check", reffile), what)
                if r is not None:
                    cells["gnu_parallel_1t"] = {"times": [float(r["time"])], "extra": [int(r["extra_bytes"])],
                                                "ok": r.get("ok") == "1"}
                    log("%-58s %8.3f s" % (what, float(r["time"])))
            load = other_load_pct(cl0, read_cpu_stat())
            os.unlink(keyfile)
            if os.path.exists(reffile):
                os.unlink(reffile)
            return cells, load

        def run_fromfile(path):
            cl0 = read_cpu_stat()
            ffsys = ["read", "read_prefaulted", "sm", "numpy"]
            cells = {x: {"times": [], "ok": True} for x in ffsys}
            for rep in range(3):
                for k in range(len(ffsys)):
                    sy = ffsys[(k + rep) % len(ffsys)]
                    what = "fromfile %s, run %d" % (sy, rep + 1)
                    argv = ([sys.executable, os.path.abspath(__file__), "--child", "fromfile", path] if sy == "numpy"
                            else [binpath, "fromfile", sy, path])
                    r = run_child(argv, what)
                    if r is None or r.get("ok") != "1":
                        cells[sy]["ok"] = False
                    if r is not None:
                        cells[sy]["times"].append(float(r["time"]))
                        log("%-58s %8.3f s  %.2f GB/s" % (what, float(r["time"]),
                                                          file_bytes / float(r["time"]) / 1e9))
            return cells, other_load_pct(cl0, read_cpu_stat())

        def retry_allowed(load):
            # a case disturbed by other processes is run again (once), after waiting for a quiet
            # machine, while the whole run stays within its time budget; the quieter attempt is kept
            return load > 10 and time.time() - t_start < RETRY_BUDGET

        case_id = 0
        for dtype in ("f64", "i64"):
            for dist in ("uniform", "skewed"):
                for n in sizes:
                    case_id += 1
                    cells, load = run_case(dtype, dist, n, case_id)
                    if retry_allowed(load):
                        log("case %s %s n=%d: other processes used %.0f%% of the CPUs; running it again"
                            % (dtype, dist, n, load))
                        wait_for_quiet(60)
                        cells2, load2 = run_case(dtype, dist, n, case_id)
                        if load2 < load:
                            cells, load = cells2, load2
                        retried.append((dtype, dist, n))
                    for sy, c in cells.items():
                        results[(sy, dtype, dist, n)] = c
                    case_load[(dtype, dist, n)] = load

        def run_presorted(dtype, kind, param, n, seed):
            """numpy and sm_argsort on one of numpy's benchmark inputs; numpy's answer is the reference."""
            keyfile = os.path.join(tmp, "keys.bin")
            reffile = os.path.join(tmp, "ref.bin")
            name = presorted_name(kind, param)
            log("case %s %s n=%d: generating keys" % (dtype, name, n))
            gen_presorted(keyfile, dtype, kind, param, n, seed)
            if os.path.exists(reffile):
                os.unlink(reffile)
            cl0 = read_cpu_stat()
            systems = ["numpy", "sm"]
            cells = {x: {"times": [], "extra": [], "ok": True} for x in systems}
            ref_ok = False
            for rep in range(3):
                for k in range(len(systems)):
                    sy = systems[(k + rep) % len(systems)]
                    if sy == "sm" and not ref_ok:
                        continue  # numpy has not written the reference (it failed): nothing to check against
                    refmode = "write" if (sy == "numpy" and not ref_ok) else "check"
                    what = "%s, %s %s n=%d, run %d" % (sy, dtype, name, n, rep + 1)
                    r = run_child(argsort_cmd(binpath, sy, dtype, n, keyfile, refmode, reffile), what)
                    cell = cells[sy]
                    record_run(cell, r)
                    if r is not None:
                        if sy == "numpy" and r.get("ok") == "1":
                            ref_ok = True
                        log("%-58s %8.3f s, extra %8.1f MB%s" % (what, float(r["time"]), int(r["extra_bytes"]) / 1e6,
                                                                "" if r.get("ok") == "1" else "  WRONG"))
            if not cells["sm"]["times"]:
                cells["sm"]["ok"] = False
            load = other_load_pct(cl0, read_cpu_stat())
            os.unlink(keyfile)
            if os.path.exists(reffile):
                os.unlink(reffile)
            return cells, load

        for dtype in ("f64", "i64"):
            for n in pre_sizes:
                for kind, param in PRESORTED:
                    case_id += 1
                    cells, load = run_presorted(dtype, kind, param, n, SEED + case_id)
                    if retry_allowed(load):
                        log("case %s %s n=%d: other processes used %.0f%% of the CPUs; running it again"
                            % (dtype, presorted_name(kind, param), n, load))
                        wait_for_quiet(60)
                        cells2, load2 = run_presorted(dtype, kind, param, n, SEED + case_id)
                        if load2 < load:
                            cells, load = cells2, load2
                        retried.append((dtype, presorted_name(kind, param), n))
                    pre[(dtype, presorted_name(kind, param), n)] = (cells, load)

        # ------------------------------------------------------------------ fromfile
        path = os.path.join(tmp, "fromfile.bin")
        log("fromfile: writing %.2f GB to %s and reading it once (page cache warm-up)" % (file_bytes / 1e9, path))
        gen_words_file(path, file_bytes)
        ff, ff_load = run_fromfile(path)
        if retry_allowed(ff_load):
            log("fromfile: other processes used %.0f%% of the CPUs; running it again" % ff_load)
            wait_for_quiet(60)
            ff2, ff_load2 = run_fromfile(path)
            if ff_load2 < ff_load:
                ff, ff_load = ff2, ff_load2
            retried.append("fromfile")
        os.unlink(path)
    except Hang as h:
        log("WATCHDOG: " + str(h) + "; aborting")
        rc = 124
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        return rc

    elapsed = time.time() - t_start
    line, quiet = load_line(load0, read_cpu_stat())
    P(line)
    P("")

    # ------------------------------------------------------------------ summary: numpy's inputs
    med = lambda c: statistics.median(c["times"]) if c["times"] else None  # noqa: E731
    P("## Summary: sm_argsort vs numpy.argsort(kind='stable') on numpy's own sort benchmark inputs")
    P("")
    P("Target: at least as fast as numpy on every input (numpy / sm >= 1), at least 5x on `random`; "
      "output identical to numpy's; peak extra memory at most 2 n (keysize + 8) = 32 n bytes.")
    P("")
    P("| input | dtype | n | numpy (s) | sm_argsort (s) | numpy / sm | sm peak extra (MB) | extra / bound "
      "| target met | result | other load |")
    P("|---|---|---|---|---|---|---|---|---|---|---|")
    missed = []
    for dtype in ("f64", "i64"):
        for n in pre_sizes:
            for kind, param in PRESORTED:
                name = presorted_name(kind, param)
                if (dtype, name, n) not in pre:
                    continue
                cells, load = pre[(dtype, name, n)]
                tn, ts = med(cells["numpy"]), med(cells["sm"])
                ok = cells["numpy"]["ok"] and cells["sm"]["ok"]
                ratio = tn / ts if (tn and ts) else None
                ex = max(cells["sm"]["extra"]) if cells["sm"]["extra"] else None
                bound = 2 * n * (8 + 8)
                want = 5.0 if kind == "random" else 1.0
                met = ok and ratio is not None and ratio >= want and ex is not None and ex <= bound
                if not met:
                    missed.append("%s %s n=%s" % ({"f64": "float64", "i64": "int64"}[dtype], name, fmt_n(n)))
                P("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% |"
                  % (name, {"f64": "float64", "i64": "int64"}[dtype], fmt_n(n),
                     "%.4f" % tn if tn else "FAIL", "%.4f" % ts if ts else "FAIL",
                     "%.2f" % ratio if ratio else "n/a", "%.1f" % (ex / 1e6) if ex is not None else "n/a",
                     "%.2f" % (ex / bound) if ex is not None else "n/a",
                     "yes" if met else "**no** (needs >= %g)" % want,
                     "identical" if ok else "**WRONG/FAILED**", load))
    P("")
    P("%d of %d cases meet the target%s." % (len(pre) - len(missed), len(pre),
                                              "" if not missed else "; not met: " + "; ".join(missed)))
    P("")
    P("Inputs: numpy's `SortGenerator` (benchmarks/benchmarks/bench_function_base.py) with every parameter its "
      "`Sort` benchmark lists, as float64 and int64: random = arange shuffled; ordered = arange; reversed = "
      "arange descending; uniform = all ones; sorted_block(b) = n/b interleaved sorted blocks of b "
      "(`a[i::n//b]` concatenated); swapped_pair(f) = arange with f·n random pairs swapped in turn; "
      "random_unsorted_area(f) = arange with f·n/100 random areas of 100 shuffled. Random draws: "
      "`np.random.RandomState((%d + case))`. time = median of 3 runs (fresh process each, interleaved); numpy's "
      "time includes allocating its output, sm_argsort's output is allocated and touched before timing (as "
      "in the table below). result: identical = sm_argsort's permutation is byte-equal to numpy's (and checked to "
      "be a permutation, sorted, ties in index order)." % SEED)
    P("")

    # ------------------------------------------------------------------ argsort table
    labels = dict(SYSTEMS)
    labels["gnu_parallel_1t"] = "`__gnu_parallel::stable_sort` of pairs, **1 thread** (parallel check)"
    P("## sm_argsort vs numpy, libstdc++ parallel mode and std::stable_sort")
    P("")
    P("| system | dtype | keys | n | time (s) | runs | time / sm_argsort | peak extra memory (MB) "
      "| extra / bound | result |")
    P("|---|---|---|---|---|---|---|---|---|---|")
    for dtype in ("f64", "i64"):
        for dist in ("uniform", "skewed"):
            for n in sizes:
                sm = results.get(("sm", dtype, dist, n))
                smt = med(sm) if sm else None
                bound = 2 * n * (8 + 8)
                for s in [x for x, _ in SYSTEMS] + ["gnu_parallel_1t"]:
                    c = results.get((s, dtype, dist, n))
                    if c is None:
                        continue
                    t = med(c)
                    ts = "%.3f" % t if t is not None else "FAIL"
                    ratio = "%.2f" % (t / smt) if (t and smt) else "n/a"
                    ex = max(c["extra"]) if c["extra"] else None
                    exs = "%.1f" % (ex / 1e6) if ex is not None else "n/a"
                    exb = "%.2f" % (ex / bound) if ex is not None else "n/a"
                    P("| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |"
                      % (labels[s], {"f64": "float64", "i64": "int64"}[dtype], dist, fmt_n(n), ts, len(c["times"]),
                         ratio, exs, exb, "exact" if c["ok"] else "**WRONG/FAILED**"))
    P("")
    P("time = median wall time of the sort call over `runs` runs (one fresh process per run; 1 run for "
      "n = 5·10^7 to keep the whole benchmark within minutes), lower is better; time / sm_argsort > 1 means "
      "sm_argsort is faster. The `__gnu_parallel` time includes building the (key, index) pairs and "
      "extracting the indices (2 OpenMP threads each); std::stable_sort's includes filling out with 0..n-1.")
    P("peak extra memory = VmHWM during the sort minus VmRSS just before it (keys loaded, output allocated "
      "and touched, pool/threads created), the largest over the runs, in MB = 10^6 bytes; for numpy, whose "
      "argsort allocates its output itself, the 8n output bytes are subtracted. "
      "bound = 2 n (keysize + 8) bytes = 32 n for both dtypes.")
    P("result: exact = the permutation is byte-equal to std::stable_sort's (and, for the C++ systems, "
      "checked to be a permutation with keys non-decreasing and equal keys in increasing index order).")
    P("")
    busy = ["%s %s n=%s: %.0f%%" % ({"f64": "float64", "i64": "int64"}[d], s, fmt_n(n), pct)
            for (d, s, n), pct in case_load.items() if pct > 10]
    P("Other load per case (CPU time of other processes while the case ran): %s."
      % ("<= 10% in every case" if not busy else "**above 10% in** " + "; ".join(busy)))
    rc_cases = ["%s %s n=%s" % ({"f64": "float64", "i64": "int64"}[d], s, fmt_n(n)) for d, s, n in
                [x for x in retried if x != "fromfile"]]
    if rc_cases:
        P("Cases run twice because other processes used > 10%% of the CPUs during the first attempt (the quieter "
          "attempt is shown): %s." % "; ".join(rc_cases))
    P("")
    P("Keys (numpy PCG64, seed (%d, case), the same keys for every system of a case):" % SEED)
    P("")
    for (dtype, dist), d in DISTS.items():
        nd = ["%s: %s" % (fmt_n(n), results[("std_stable", dtype, dist, n)]["distinct"]) for n in sizes
              if "distinct" in results.get(("std_stable", dtype, dist, n), {})]
        P("- %s %s: %s; distinct keys: %s" % ({"f64": "float64", "i64": "int64"}[dtype], dist, d,
                                              ", ".join(nd) or "n/a"))
    P("")

    # ------------------------------------------------------------------ targets
    P("## Targets (float64, uniform, n = 10^7, 2 workers)")
    P("")
    tn = 10**7
    sm = results.get(("sm", "f64", "uniform", tn))
    gnu = results.get(("gnu_parallel", "f64", "uniform", tn))
    npy = results.get(("numpy", "f64", "uniform", tn))
    g1 = results.get(("gnu_parallel_1t", "f64", "uniform", tn))
    smt = med(sm) if sm and sm["ok"] else None

    def verdict(ok):
        return "met" if ok else "**NOT met**"

    if smt and gnu and med(gnu):
        r = med(gnu) / smt
        P("- at least 1.5x faster than `__gnu_parallel::stable_sort`: %.2fx (%.3f s vs %.3f s): %s"
          % (r, smt, med(gnu), verdict(r >= 1.5)))
    else:
        P("- at least 1.5x faster than `__gnu_parallel::stable_sort`: n/a (not measured or a run failed)")
    if smt and npy and med(npy):
        r = med(npy) / smt
        P("- at least 6x faster than numpy's stable argsort: %.2fx (%.3f s vs %.3f s): %s"
          % (r, smt, med(npy), verdict(r >= 6)))
    else:
        P("- at least 6x faster than numpy's stable argsort: n/a (not measured or a run failed)")
    if sm and sm["extra"]:
        ex, bound = max(sm["extra"]), 2 * tn * 16
        P("- peak extra memory at most 2 n (keysize + 8) = %.0f MB: %.1f MB (%.2f of the bound): %s"
          % (bound / 1e6, ex / 1e6, ex / bound, verdict(ex <= bound)))
    else:
        P("- peak extra memory at most 2 n (keysize + 8): n/a (not measured or a run failed)")
    over = [(d, s, n) for (sy, d, s, n), c in results.items()
            if sy == "sm" and c["extra"] and max(c["extra"]) > 2 * n * 16]
    P("- (informational) sm_argsort within the memory bound in every case: %s"
      % ("yes" if not over else "no: " + ", ".join("%s %s n=%s" % (d, s, fmt_n(n)) for d, s, n in over)))
    if gnu and g1 and med(gnu) and med(g1):
        P("- (parallel check) `__gnu_parallel::stable_sort` with 2 threads %.3f s vs 1 thread %.3f s: speed-up %.2fx"
          % (med(gnu), med(g1), med(g1) / med(gnu)))
    tl = case_load.get(("f64", "uniform", tn))
    if tl is not None and tl > 10:
        P("- **other processes used %.0f%% of the CPUs while this case ran: the verdicts are unreliable; re-run**" % tl)
    elif tl is not None and not quiet:
        P("- the machine was not quiet during the whole run (see above), but it was during this case")
    P("")

    # ------------------------------------------------------------------ fromfile table
    P("## sm_fromfile of a %g GB file (page cache warm)" % (file_bytes / 1e9))
    P("")
    P("| system | time (s) | GB/s | time / sm_fromfile | runs | result |")
    P("|---|---|---|---|---|---|")
    fl = {"sm": "sm_fromfile(pool of 2 workers, path, 0, 8, SIZE_MAX) (+ sm_free)",
          "read": "sequential read() loop into malloc'd memory, 16 MiB per call, 1 thread",
          "read_prefaulted": "(informational) the same read() loop into memory faulted in before timing",
          "numpy": "numpy.fromfile(path, dtype=uint64)"}
    smf = statistics.median(ff["sm"]["times"]) if ff["sm"]["times"] else None
    for s in ("sm", "read", "numpy", "read_prefaulted"):
        c = ff[s]
        t = statistics.median(c["times"]) if c["times"] else None
        P("| %s | %s | %s | %s | %d | %s |"
          % (fl[s], "%.3f" % t if t else "FAIL", "%.2f" % (file_bytes / t / 1e9) if t else "n/a",
             "%.2f" % (t / smf) if (t and smf) else "n/a", len(c["times"]),
             "every word checked" if c["ok"] else "**WRONG/FAILED**"))
    P("")
    P("The file (%d bytes, GB = 10^9 bytes) is written once and read once before timing, so every reader "
      "copies from the page cache; each run is a fresh process and includes allocating (and faulting in) "
      "the destination (except the informational pre-faulted row, which shows the copy alone); median of 3 runs, "
      "interleaved. Other load while it ran: %.0f%%%s.%s"
      % (file_bytes, ff_load, "" if ff_load <= 10 else " (**not quiet**)",
         " Run twice (the first attempt was disturbed); the quieter attempt is shown." if "fromfile" in retried
         else ""))
    P("Destination pages: malloc'd memory (read loop) uses 4 KiB pages here (transparent huge pages: %s); "
      "numpy asks for huge pages (madvise) on large arrays; sm_fromfile's sm_empty memory is shared memory "
      "(shmem huge pages: %s)." % (thp("enabled"), thp("shmem_enabled")))
    P("")
    P("Total benchmark time: %.0f s." % elapsed)
    if stray:
        P("")
        P("### Output on stderr")
        P("")
        P("A benchmark child printed on stderr (first lines of the first run that did):")
        P("")
        for s, e in stray.items():
            P("- %s: `%s`" % (s, e.replace("`", "'")))
    P("")
    if problems:
        P("### Problems")
        P("")
        for p in problems:
            P("- " + p)
    else:
        P("No problems: every sharedmem call returned success and every result was exact.")
    print("\n".join(out), flush=True)
    return 2 if problems else 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "argsort":
            return child_argsort(sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], *sys.argv[7:8])
        if sys.argv[2] == "fromfile":
            return child_fromfile(sys.argv[3])
        return 1
    if len(sys.argv) == 3 and sys.argv[1] == "--bin":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temp dir is removed
        return main_driver(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
