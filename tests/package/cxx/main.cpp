// A C++17 consumer of an installed sharedmem through sharedmem.hpp. Every check is exact; prints
// "CXX OK" and exits 0 when all pass, else names the failed check on stderr and exits 1.
#include <sharedmem.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

int run_cxx11_checks();  // cxx11_checks.cpp, compiled as C++11

namespace {

int failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                               \
        }                                                                             \
    } while (0)

const sm_backend all_backends[] = {SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL,
                                   SM_BACKEND_PERSISTENT};

// Whether jobs run in worker processes: the process and persistent backends, unless SM_DEBUG=1
// makes every map serial in the caller (the test also passes in debug mode).
bool debug_mode() {
    const char *debug = std::getenv("SM_DEBUG");
    return debug && *debug && std::strcmp(debug, "0") != 0;
}

bool forked(sm_backend b) {
    return (b == SM_BACKEND_PROCESS || b == SM_BACKEND_PERSISTENT) && !debug_mode();
}

const char *name(sm_backend b) {
    return b == SM_BACKEND_PROCESS  ? "process"
           : b == SM_BACKEND_THREAD ? "thread"
           : b == SM_BACKEND_SERIAL ? "serial"
                                    : "persistent";
}

// A typed result that is not a scalar: checks the bytes arrive whole, and reduce's job order.
struct square {
    std::int64_t job;
    double value;
    std::uint32_t worker;
};

void typed_map_with_reduce(sm_backend backend) {
    sharedmem::pool pool(3, backend);
    CHECK(pool.nworkers() == (backend == SM_BACKEND_SERIAL ? 1 : 3));  // a serial pool has one
    CHECK(pool.get() != nullptr);
    const std::size_t njobs = 10000;
    double sum = 0;
    std::size_t next = 0;
    bool in_order = true;
    sharedmem::outcome o = pool.map<square>(
        njobs,
        [](std::size_t job, square &r) {
            // results start as zero bytes
            if (r.job != 0 || r.value != 0 || r.worker != 0) throw std::runtime_error("dirty result");
            r.job = static_cast<std::int64_t>(job);
            r.value = double(job) * double(job);
            r.worker = static_cast<std::uint32_t>(sharedmem::worker_id());
        },
        [&](std::size_t job, const square &r) {
            if (job != next++ || r.job != static_cast<std::int64_t>(job)) in_order = false;
            sum += r.value;
        });
    CHECK(o == sharedmem::outcome::completed);
    CHECK(in_order);
    CHECK(next == njobs);
    // sum of j^2 for j < n = (n-1) n (2n-1) / 6, exact in a double here
    CHECK(sum == double((njobs - 1) * njobs * (2 * njobs - 1) / 6));
    if (sum != double((njobs - 1) * njobs * (2 * njobs - 1) / 6))
        std::fprintf(stderr, "  %s: sum %.0f\n", name(backend), sum);

    // Results of odd sizes and alignments: 3 bytes, and over-aligned (the wrapper copies a result
    // through an aligned buffer when the library's slot is not aligned enough for R).
    struct three {
        unsigned char b[3];
    };
    struct alignas(256) wide {
        std::int64_t job;
        double pad[3];
    };
    bool odd_ok = true;
    o = pool.map<three>(
        3000,
        [](std::size_t job, three &r) {
            r.b[0] = static_cast<unsigned char>(job);
            r.b[2] = static_cast<unsigned char>(job >> 8);
        },
        [&](std::size_t job, three &r) {
            odd_ok = odd_ok && r.b[0] == static_cast<unsigned char>(job) && r.b[1] == 0 &&
                     r.b[2] == static_cast<unsigned char>(job >> 8);
        });
    CHECK(o == sharedmem::outcome::completed && odd_ok);
    o = pool.map<wide>(
        3000,
        [](std::size_t job, wide &r) {
            if (reinterpret_cast<std::uintptr_t>(&r) % alignof(wide) != 0) throw std::runtime_error("misaligned");
            r.job = static_cast<std::int64_t>(job);
            r.pad[2] = 1;
        },
        [&](std::size_t job, const wide &r) {
            odd_ok = odd_ok && reinterpret_cast<std::uintptr_t>(&r) % alignof(wide) == 0 &&
                     r.job == static_cast<std::int64_t>(job) && r.pad[2] == 1 && r.pad[0] == 0;
        });
    CHECK(o == sharedmem::outcome::completed && odd_ok);

    // work returning int (0) and a plain map without results, writing through a view.
    sharedmem::shared_array<std::int32_t> seen(1000);
    sharedmem::shared_view<std::int32_t> seen_view = seen.view();
    o = pool.map(seen.size(), [=](std::size_t job) -> int {
        seen_view[job] = static_cast<std::int32_t>(job) + 1;
        return 0;
    });
    CHECK(o == sharedmem::outcome::completed);
    bool all = true;
    for (std::size_t j = 0; j < seen.size(); ++j) all = all && seen[j] == static_cast<std::int32_t>(j) + 1;
    CHECK(all);
}

// critical_section around a read-pause-write increment of a shared counter: exact count.
void critical_counter(sm_backend backend) {
    sharedmem::pool pool(4, backend);
    sharedmem::pool_ref team = pool;
    sharedmem::shared_array<std::int64_t> counter(1);
    std::int64_t *shared_counter = counter.data();
    const std::size_t njobs = 4000;
    sharedmem::outcome o = pool.map(njobs, [=](std::size_t) {
        sharedmem::critical_section lock(team);
        volatile std::int64_t *c = shared_counter;
        std::int64_t v = *c;
        volatile int spin = 0;
        while (spin < 2000) spin = spin + 1;  // widen the race window
        *c = v + 1;
    });
    CHECK(o == sharedmem::outcome::completed);
    CHECK(counter[0] == static_cast<std::int64_t>(njobs));
    if (counter[0] != static_cast<std::int64_t>(njobs))
        std::fprintf(stderr, "  %s: counter %lld\n", name(backend), static_cast<long long>(counter[0]));
}

// ordered_section: jobs append their index to a shared log in job order.
void ordered_log(sm_backend backend) {
    sharedmem::pool pool(4, backend);
    const std::size_t njobs = 500;
    sharedmem::shared_array<std::int64_t> log_array(njobs + 1);  // log[0]: length
    sharedmem::shared_view<std::int64_t> log = log_array.view();
    sharedmem::pool_ref team = pool;
    sharedmem::outcome o = pool.map(njobs, [=](std::size_t job) {
        volatile double x = 0;  // some unordered work before the ordered part
        for (std::size_t i = 0; i < (job % 7) * 100; ++i) x = x + 1;
        sharedmem::ordered_section turn(team);
        std::int64_t n = log[0];
        log[static_cast<std::size_t>(n) + 1] = static_cast<std::int64_t>(job);
        log[0] = n + 1;
    });
    CHECK(o == sharedmem::outcome::completed);
    CHECK(log[0] == static_cast<std::int64_t>(njobs));
    bool in_order = true;
    for (std::size_t j = 0; j < njobs; ++j) in_order = in_order && log[j + 1] == static_cast<std::int64_t>(j);
    CHECK(in_order);
}

struct job_failed : std::runtime_error {
    std::size_t job;
    explicit job_failed(std::size_t j) : std::runtime_error("job_failed " + std::to_string(j)), job(j) {}
};

// An exception thrown by a job: the same object on thread/serial, an SM_ERR_JOB error carrying
// its text on process. Either way every job before it was reduced, and none after it.
void exception_from_job(sm_backend backend) {
    sharedmem::pool pool(4, backend);
    const std::size_t bad = 137;
    std::size_t reduced = 0;
    bool caught = false;
    try {
        pool.map<std::int64_t>(
            100000,
            [=](std::size_t job, std::int64_t &r) {
                if (job == bad || job == bad + 50) throw job_failed(job);
                r = 1;
            },
            [&](std::size_t, std::int64_t &r) { reduced += static_cast<std::size_t>(r); });
    } catch (const job_failed &e) {
        caught = true;
        CHECK(!forked(backend));
        CHECK(e.job == bad);
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(forked(backend));
        CHECK(e.status() == SM_ERR_JOB);
        CHECK(std::strstr(e.what(), "job 137 threw") != nullptr);
        CHECK(std::strstr(e.what(), "job_failed 137") != nullptr);
        CHECK(std::strstr(e.message(), "SM_ERR_JOB") == nullptr);
    }
    CHECK(caught);
    CHECK(reduced == bad);

    // A job returning an int error: sharedmem::error SM_ERR_JOB with the C library's message.
    caught = false;
    try {
        pool.map(100, [](std::size_t job) { return job == 42 ? 7 : 0; });
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_JOB);
        CHECK(std::strstr(e.message(), "job 42") != nullptr);
        CHECK(std::strstr(e.what(), "SM_ERR_JOB") == e.what());
    }
    CHECK(caught);

    // An int error at an earlier job than an exception: the int error is what is reported.
    caught = false;
    try {
        pool.map(200, [](std::size_t job) -> int {
            if (job == 150) throw job_failed(job);
            return job == 20 ? 5 : 0;
        });
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_JOB);
        CHECK(std::strstr(e.message(), "job 20") != nullptr);
    }
    CHECK(caught);

    // A non-std exception.
    caught = false;
    try {
        pool.map(10, [](std::size_t job) {
            if (job == 3) throw 42;
        });
    } catch (int v) {
        caught = true;
        CHECK(!forked(backend) && v == 42);
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(forked(backend) && e.status() == SM_ERR_JOB);
        CHECK(std::strstr(e.what(), "not a std::exception") != nullptr);
    }
    CHECK(caught);

    // An exception from reduce (on the caller): always the same object.
    caught = false;
    std::size_t reduced_before = 0;
    try {
        pool.map<int>(
            1000, [](std::size_t job, int &r) { r = static_cast<int>(job); },
            [&](std::size_t job, int &) {
                if (job == 300) throw job_failed(job);
                ++reduced_before;
            });
    } catch (const job_failed &e) {
        caught = true;
        CHECK(e.job == 300);
    }
    CHECK(caught);
    CHECK(reduced_before == 300);

    // The pool is still usable after all that.
    std::int64_t total = 0;
    CHECK(pool.map<std::int64_t>(
              10, [](std::size_t job, std::int64_t &r) { r = static_cast<std::int64_t>(job); },
              [&](std::size_t, std::int64_t &r) { total += r; }) == sharedmem::outcome::completed);
    CHECK(total == 45);
}

// SM_STOP from a job, and true from reduce: outcome::stopped, reduced up to the stopping job.
void stops(sm_backend backend) {
    sharedmem::pool pool(3, backend);
    std::size_t reduced = 0, last = 0;
    sharedmem::outcome o = pool.map<std::uint8_t>(
        100000,
        [](std::size_t job, std::uint8_t &r) -> int {
            r = 1;
            return job == 777 ? sharedmem::stop : 0;
        },
        [&](std::size_t job, std::uint8_t &r) {
            reduced += r;
            last = job;
        });
    CHECK(o == sharedmem::outcome::stopped);
    CHECK(reduced == 778);
    CHECK(last == 777);

    reduced = 0;
    o = pool.map<double>(
        100000, [](std::size_t job, double &r) { r = double(job); },
        [&](std::size_t, double &r) {
            ++reduced;
            return r >= 99.0;
        });
    CHECK(o == sharedmem::outcome::stopped);
    CHECK(reduced == 100);

    o = pool.map(50, [](std::size_t job) { return job == 10 ? sharedmem::stop : 0; });
    CHECK(o == sharedmem::outcome::stopped);
}

// Misuse is thrown as sharedmem::error.
void misuse() {
    sharedmem::pool pool(2, SM_BACKEND_THREAD);
    bool caught = false;
    try {
        sharedmem::critical_section lock(pool);  // outside a job
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_STATE);
    }
    CHECK(caught);

    caught = false;
    try {
        sharedmem::pool bad(1, static_cast<sm_backend>(99));
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_INVALID);
        CHECK(std::strstr(e.message(), "99") != nullptr);
    }
    CHECK(caught);

    // The status of a failed constructor is the library's (sm_last_status), not a guess.
    caught = false;
    try {
        sharedmem::pool too_many(SM_MAX_WORKERS + 1, SM_BACKEND_THREAD);
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_INVALID && std::strstr(e.message(), "SM_MAX_WORKERS") != nullptr);
    }
    CHECK(caught);
    caught = false;
    try {
        sharedmem::shared_array<double> huge(std::size_t(1) << 61);  // 2^64 bytes: overflows
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_INVALID);
    }
    CHECK(caught);
    caught = false;
    try {
        sharedmem::shared_array<char> too_big(std::size_t(1) << 62);  // 4 EiB: cannot be had
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_NOMEM);
    }
    CHECK(caught);

    // Entering critical twice in one job: the guard throws inside the job, which fails the map
    // with that exception (thread backend: the same object).
    caught = false;
    try {
        pool.map(4, [&](std::size_t) {
            sharedmem::critical_section a(pool);
            sharedmem::critical_section b(pool);
        });
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_STATE);
    }
    CHECK(caught);

    // Moves: the moved-from pool is empty, the moved-to one works.
    sharedmem::pool moved(std::move(pool));
    CHECK(pool.get() == nullptr);
    CHECK(moved.nworkers() == 2);
    CHECK(moved.map(3, [](std::size_t) {}) == sharedmem::outcome::completed);
    sharedmem::shared_array<float> a(10);
    a[3] = 1.5f;
    sharedmem::shared_array<float> b(std::move(a));
    CHECK(a.data() == nullptr && a.size() == 0);
    CHECK(b.size() == 10 && b[3] == 1.5f);
}

// Parallel regions: pool.parallel with for_loop (every schedule, nowait, ordered), barrier, single,
// master, num_workers and critical_section; stop and exceptions from a region.
void regions(sm_backend backend) {
    sharedmem::pool pool(3, backend);
    // A serial region (and every region in debug mode) is a team of one.
    const int team = backend == SM_BACKEND_SERIAL || debug_mode() ? 1 : 3;
    const std::size_t n = 1000;
    // The region captures by value (persistent workers get a copy of it): views of the arrays,
    // and the pool as a pool_ref.
    sharedmem::shared_array<std::int32_t> hits_array(n), owner_array(n);
    sharedmem::shared_array<std::int64_t> partial_array(3), counts_array(8), log_array(n + 1);
    auto hits = hits_array.view(), owner = owner_array.view();
    auto partial = partial_array.view(), counts = counts_array.view(), log = log_array.view();
    sharedmem::pool_ref p = pool;
    sharedmem::outcome o = pool.parallel([=] {
        const int me = sharedmem::worker_id();
        if (me < 0 || me >= team || sharedmem::num_workers() != team) throw std::runtime_error("team");
        if (sharedmem::master() != (me == 0)) throw std::runtime_error("master");
        // Every schedule hands out each iteration exactly once.
        sharedmem::for_loop(p, 0, n, [&](std::size_t i) { hits[i] += 1; });
        sharedmem::for_loop(p, 0, n, [&](std::size_t i) { hits[i] += 1; }, SM_SCHEDULE_STATIC, 7);
        sharedmem::for_loop(p, 0, n, [&](std::size_t i) { hits[i] += 1; }, SM_SCHEDULE_DYNAMIC, 3);
        sharedmem::for_loop(p, 0, n, [&](std::size_t i) { hits[i] += 1; }, SM_SCHEDULE_GUIDED);
        // A reduction: per-worker partial sums (nowait), a barrier, one worker adds them up.
        std::int64_t mine = 0;
        sharedmem::for_loop(
            p, 5, n,
            [&](std::size_t i) {
                mine += static_cast<std::int64_t>(i);
                owner[i] = me + 1;
            },
            SM_SCHEDULE_DYNAMIC, 16, SM_FOR_NOWAIT);
        partial[static_cast<std::size_t>(me)] = mine;
        sharedmem::barrier(p);
        if (sharedmem::single(p)) {
            for (int w = 0; w < team; ++w) counts[0] += partial[static_cast<std::size_t>(w)];
            counts[1] += 1;  // how many workers ran the single block
        }
        // a second single: one worker again (its own counter: no barrier follows a single, so
        // the first single's worker may still be writing counts[1])
        if (sharedmem::single(p)) counts[3] += 1;
        sharedmem::barrier(p);
        {
            sharedmem::critical_section lock(p);
            counts[2] += 1;
        }
        // An ordered loop: the ordered parts run in iteration order.
        sharedmem::for_loop(
            p, 0, n,
            [&](std::size_t i) {
                sharedmem::ordered_section turn(p);
                std::int64_t k = log[0];
                log[static_cast<std::size_t>(k) + 1] = static_cast<std::int64_t>(i);
                log[0] = k + 1;
            },
            SM_SCHEDULE_DYNAMIC, 2, SM_FOR_ORDERED);
    });
    CHECK(o == sharedmem::outcome::completed);
    bool all4 = true, owned = true, in_order = log[0] == static_cast<std::int64_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
        all4 = all4 && hits[i] == 4;
        owned = owned && (i < 5 ? owner[i] == 0 : owner[i] >= 1 && owner[i] <= team);
        in_order = in_order && log[i + 1] == static_cast<std::int64_t>(i);
    }
    CHECK(all4);
    CHECK(owned);
    CHECK(in_order);
    CHECK(counts[0] == static_cast<std::int64_t>((n - 1) * n / 2 - 10));  // 5 + 6 + ... + n-1
    CHECK(counts[1] == 1);
    CHECK(counts[3] == 1);
    CHECK(counts[2] == team);

    // A worker returning sharedmem::stop stops the region: the others leave at their barrier.
    o = pool.parallel([=]() -> int {
        if (sharedmem::worker_id() == team - 1) return sharedmem::stop;
        for (;;) sharedmem::barrier(p);  // throws SM_STOPPED once the stop is seen
    });
    CHECK(o == sharedmem::outcome::stopped);

    // An exception leaving one worker's region: the same object on thread/serial, an SM_ERR_JOB
    // error with its text from a forked worker. The other workers are stopped at their barrier.
    bool caught = false;
    try {
        pool.parallel([=] {
            if (sharedmem::worker_id() == team - 1) throw job_failed(99);
            for (;;) sharedmem::barrier(p);
        });
    } catch (const job_failed &e) {
        caught = true;
        CHECK(!forked(backend) && e.job == 99);
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(forked(backend) && e.status() == SM_ERR_JOB);
        CHECK(std::strstr(e.what(), "job_failed 99") != nullptr);
        CHECK(std::strstr(e.what(), ("the region of worker " + std::to_string(team - 1)).c_str()) != nullptr);
    }
    CHECK(caught);

    // A region returning an error value: sharedmem::error SM_ERR_JOB.
    caught = false;
    try {
        pool.parallel([] { return sharedmem::worker_id() == 0 ? 7 : 0; });
    } catch (const sharedmem::error &e) {
        caught = true;
        CHECK(e.status() == SM_ERR_JOB);
    }
    CHECK(caught);

    // Misuse outside a region; and a loop that not every worker runs fails the region.
    caught = false;
    try {
        sharedmem::barrier(p);
    } catch (const sharedmem::error &e) {
        caught = e.status() == SM_ERR_STATE;
    }
    CHECK(caught);
    caught = false;
    try {
        sharedmem::single(p);
    } catch (const sharedmem::error &e) {
        caught = e.status() == SM_ERR_STATE;
    }
    CHECK(caught);
    CHECK(sharedmem::master() && sharedmem::num_workers() == 1);
    if (team > 1) {
        caught = false;
        try {
            pool.parallel([=] {
                if (sharedmem::worker_id() == 0) sharedmem::barrier(p);  // the others never come
            });
        } catch (const sharedmem::error &e) {
            caught = e.status() == SM_ERR_STATE;
        }
        CHECK(caught);
    }

    // The pool still works.
    sharedmem::shared_array<std::int32_t> once_array(100);
    auto once = once_array.view();
    CHECK(pool.parallel([=] { sharedmem::for_loop(p, 0, 100, [&](std::size_t i) { once[i] += 1; }); }) ==
          sharedmem::outcome::completed);
    CHECK(std::all_of(once.begin(), once.end(), [](std::int32_t v) { return v == 1; }));
}

template <class T>
bool argsort_matches(sharedmem::pool *pool, const std::vector<T> &keys) {
    std::vector<std::int64_t> want(keys.size());
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(), [&](std::int64_t a, std::int64_t b) {
        const T &x = keys[static_cast<std::size_t>(a)], &y = keys[static_cast<std::size_t>(b)];
        // numpy order for floats: NaN last; integers: plain <
        if (x != x) return false;
        if (y != y) return true;
        return x < y;
    });
    return sharedmem::argsort(pool, keys) == want;
}

template <class T>
std::vector<T> random_keys(std::size_t n, unsigned seed) {
    std::vector<T> k(n);
    std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto &v : k) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v = static_cast<T>(s % 1000);  // many duplicates
        if (std::is_signed<T>::value && (s & 1)) v = static_cast<T>(0 - v);
    }
    return k;
}

void argsorts() {
    sharedmem::pool pool(2, SM_BACKEND_PROCESS);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> d = {3.0, nan, -1.0, inf, -0.0, 0.0, -inf, 3.0, nan, -1.0, 2.5};
    std::vector<std::int64_t> want = {6, 2, 9, 4, 5, 10, 0, 7, 3, 1, 8};
    CHECK(sharedmem::argsort(&pool, d) == want);
    CHECK(sharedmem::argsort(&pool, d.data(), d.size()) == want);
    CHECK(sharedmem::argsort<double>(nullptr, d.data(), d.size()) == want);
    CHECK(sharedmem::argsort<double>(nullptr, nullptr, 0).empty());

    const std::size_t n = 100000;
    CHECK(argsort_matches(&pool, random_keys<double>(n, 1)));
    CHECK(argsort_matches(&pool, random_keys<float>(n, 2)));
    CHECK(argsort_matches(&pool, random_keys<std::int64_t>(n, 3)));
    CHECK(argsort_matches(&pool, random_keys<std::int32_t>(n, 4)));
    CHECK(argsort_matches(&pool, random_keys<std::int16_t>(n, 5)));
    CHECK(argsort_matches(&pool, random_keys<std::int8_t>(n, 6)));
    CHECK(argsort_matches(&pool, random_keys<std::uint64_t>(n, 7)));
    CHECK(argsort_matches(&pool, random_keys<std::uint32_t>(n, 8)));
    CHECK(argsort_matches(&pool, random_keys<std::uint16_t>(n, 9)));
    CHECK(argsort_matches(&pool, random_keys<std::uint8_t>(n, 10)));
    CHECK(argsort_matches(&pool, random_keys<long long>(n, 11)));
    CHECK(argsort_matches(&pool, random_keys<unsigned long>(n, 12)));

    static_assert(sharedmem::dtype_of<std::int8_t>::value == SM_DTYPE_I8, "");
    static_assert(sharedmem::dtype_of<std::uint16_t>::value == SM_DTYPE_U16, "");
    static_assert(sharedmem::dtype_of<long long>::value == SM_DTYPE_I64, "");
    static_assert(sharedmem::dtype_of<float>::value == SM_DTYPE_F32, "");

    // keys in shared memory
    sharedmem::shared_array<std::uint32_t> sk(5);
    const std::uint32_t vals[5] = {5, 1, 4, 1, 0};
    std::copy(vals, vals + 5, sk.begin());
    CHECK(sharedmem::argsort(&pool, sk) == (std::vector<std::int64_t>{4, 1, 3, 2, 0}));
}

// Per-worker results: pool.parallel<T> and pool.map_local<T> with worker_local<T>(), a struct
// whose members need SM_RESULT_ALIGN, and combine in worker order on the caller.
struct alignas(16) sums {
    long double sx;
    std::int64_t n;
};

void per_worker(sm_backend backend) {
    sharedmem::pool pool(3, backend);
    const int team = backend == SM_BACKEND_SERIAL || debug_mode() ? 1 : 3;
    const std::size_t n = 10007;
    const long double want = (long double)(n - 1) * n / 2;
    sums total{0, 0};
    std::vector<int> order;
    auto combine = [&](sums &s) {
        total.sx += s.sx;
        total.n += s.n;
        order.push_back(static_cast<int>(order.size()));
    };
    sharedmem::pool_ref p = pool;
    sharedmem::outcome o = pool.parallel<sums>(
        [=] {
            sums &s = sharedmem::worker_local<sums>();
            if (reinterpret_cast<std::uintptr_t>(&s) % SM_RESULT_ALIGN != 0) throw std::runtime_error("alignment");
            sharedmem::for_loop(p, 0, n, [&](std::size_t i) {
                s.sx += i;
                s.n += 1;
            }, SM_SCHEDULE_DYNAMIC, 13);
        },
        combine);
    CHECK(o == sharedmem::outcome::completed);
    CHECK(total.sx == want && total.n == (std::int64_t)n && (int)order.size() == team);

    total = sums{0, 0};
    order.clear();
    o = pool.map_local<sums>(n, [](std::size_t job) {
        sums &s = sharedmem::worker_local<sums>();
        s.sx += job;
        s.n += 1;
    }, combine);
    CHECK(o == sharedmem::outcome::completed);
    CHECK(total.sx == want && total.n == (std::int64_t)n && (int)order.size() == team);

    // An exception from combine is thrown once the call is over.
    bool threw = false;
    try {
        pool.map_local<sums>(10, [](std::size_t) {}, [](sums &) { throw std::logic_error("combine"); });
    } catch (const std::logic_error &e) {
        threw = std::string(e.what()) == "combine";
    }
    CHECK(threw);

    // Outside a map or region, and in a map without per-worker results: sharedmem::error.
    threw = false;
    try {
        sharedmem::worker_local<sums>();
    } catch (const sharedmem::error &e) {
        threw = e.status() == SM_ERR_STATE;
    }
    CHECK(threw);
    sharedmem::shared_array<std::int32_t> refused_array(1);
    auto refused = refused_array.view();
    pool.map(1, [=](std::size_t) {
        try {
            sharedmem::worker_local<sums>();
        } catch (const sharedmem::error &) {
            refused[0] = 1;
        }
    });
    CHECK(refused[0] == 1);
}

// Read by jobs in place (not captured): persistent workers see it as it was at sm_pool_new.
std::int64_t set_before_the_pool = 0;

int fails_at_five(std::size_t job) { return job == 5 ? 9 : 0; }

// f() must throw sharedmem::error SM_ERR_INVALID saying why the callable cannot be copied.
template <class F>
void expect_refused(F f, const char *what) {
    bool refused = false;
    try {
        f();
    } catch (const sharedmem::error &e) {
        refused = e.status() == SM_ERR_INVALID && std::strstr(e.message(), "persistent") != nullptr &&
                  std::strstr(e.message(), "not trivially copyable") != nullptr &&
                  std::strstr(e.message(), "view()") != nullptr;
        if (!refused) std::fprintf(stderr, "  %s: %s\n", what, e.what());
    }
    if (!refused) std::fprintf(stderr, "  %s was not refused\n", what);
    CHECK(refused);
}

// Persistent pools: their workers were forked with the pool, so work and regions are copied to
// them at each call. (In debug mode every call runs in the caller, on the copy too.)
void persistent_copies() {
    set_before_the_pool = 10;
    std::int64_t scale = 3;
    sharedmem::pool pool(3, SM_BACKEND_PERSISTENT);
    set_before_the_pool = 20;
    scale = 7;  // after the pool: the workers get 7 through the copy taken at the call

    // A stack value captured by value reaches the workers with its value at the call, and what
    // they write through a view is what the caller reads.
    sharedmem::shared_array<std::int64_t> out_array(1000);
    sharedmem::shared_view<std::int64_t> out = out_array.view();
    CHECK(pool.map(out.size(), [=](std::size_t job) { out[job] = scale * static_cast<std::int64_t>(job); }) ==
          sharedmem::outcome::completed);
    bool all = true;
    for (std::size_t j = 0; j < out_array.size(); ++j) all = all && out_array[j] == 7 * static_cast<std::int64_t>(j);
    CHECK(all);

    // Each call takes a new copy.
    scale = 11;
    std::int64_t sum = 0;
    CHECK(pool.map<std::int64_t>(
              100, [=](std::size_t job, std::int64_t &r) { r = scale * static_cast<std::int64_t>(job); },
              [&](std::size_t, std::int64_t &r) { sum += r; }) == sharedmem::outcome::completed);
    CHECK(sum == 11 * 4950);
    sharedmem::pool_ref team = pool;
    CHECK(pool.parallel([=] { sharedmem::for_loop(team, 0, out.size(), [&](std::size_t i) { out[i] = scale; }); }) ==
          sharedmem::outcome::completed);
    CHECK(std::all_of(out.begin(), out.end(), [](std::int64_t v) { return v == 11; }));

    // What is not copied is read as it was when the pool was made.
    std::int64_t seen = 0;
    pool.map<std::int64_t>(
        1, [](std::size_t, std::int64_t &r) { r = set_before_the_pool; }, [&](std::size_t, std::int64_t &r) { seen = r; });
    CHECK(seen == (debug_mode() ? 20 : 10));

    // A function passed by name is copied as a function pointer.
    bool caught = false;
    try {
        pool.map(10, fails_at_five);
    } catch (const sharedmem::error &e) {
        caught = e.status() == SM_ERR_JOB && std::strstr(e.message(), "job 5") != nullptr;
    }
    CHECK(caught);

    // An exception from a worker of map_local: SM_ERR_JOB with its what() (the very object in
    // debug mode, where the job runs in the caller).
    caught = false;
    try {
        pool.map_local<std::int64_t>(
            50, [=](std::size_t job) { if (job == 33) throw job_failed(job + static_cast<std::size_t>(scale)); },
            [](std::int64_t &) {});
    } catch (const job_failed &e) {
        caught = debug_mode() && e.job == 44;
    } catch (const sharedmem::error &e) {
        caught = !debug_mode() && e.status() == SM_ERR_JOB && std::strstr(e.what(), "job 33 threw") != nullptr &&
                 std::strstr(e.what(), "job_failed 44") != nullptr;
    }
    CHECK(caught);

    // A callable that is not trivially copyable (it owns a std::vector) is refused on a
    // persistent pool before anything runs, by every call; a thread pool runs it.
    std::vector<std::int32_t> ones(100, 1);
    sharedmem::shared_array<std::int32_t> ran_array(1);
    sharedmem::shared_view<std::int32_t> ran = ran_array.view();
    auto owner = [=](std::size_t job) { ran[0] += ones[job]; };
    expect_refused([&] { pool.map(100, owner); }, "map");
    expect_refused([&] { pool.map<int>(100, [=](std::size_t job, int &r) { r = ran[0] += ones[job]; }, [](std::size_t, int &) {}); },
                   "map<R>");
    expect_refused([&] { pool.map_local<std::int64_t>(100, owner, [](std::int64_t &) {}); }, "map_local");
    expect_refused([&] { pool.parallel([=] { ran[0] += ones[0]; }); }, "parallel");
    expect_refused([&] { pool.parallel<std::int64_t>([=] { ran[0] += ones[0]; }, [](std::int64_t &) {}); },
                   "parallel<T>");
    CHECK(ran[0] == 0);
    sharedmem::pool threads(2, SM_BACKEND_THREAD);
    CHECK(threads.map(1, owner) == sharedmem::outcome::completed && ran[0] == 1);
}

}  // namespace

int main() {
    for (sm_backend b : all_backends) {
        typed_map_with_reduce(b);
        critical_counter(b);
        ordered_log(b);
        exception_from_job(b);
        stops(b);
        regions(b);
        per_worker(b);
    }
    misuse();
    argsorts();
    persistent_copies();
    if (run_cxx11_checks() != 0) {
        std::fprintf(stderr, "the C++11 checks failed\n");
        ++failures;
    }
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("CXX OK\n");
    return 0;
}
