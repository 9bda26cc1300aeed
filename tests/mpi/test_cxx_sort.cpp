// sharedmem.hpp's mpi_argsort and mpi_permute (sharedmem_mpi.h included first), compiled as
// C++11:
// - for every key type (double, float, 8/16/32/64-bit signed and unsigned integers), keys of a
//   different count on each rank (none on rank 1 with 3 ranks or more), with repeats, NaNs,
//   infinities and -0.0 for floats: every rank's out, gathered on rank 0, equals sharedmem::argsort
//   of the gathered keys, and the keys moved by mpi_permute (in place) equal keys[argsort] byte
//   for byte; pointer overloads on a thread pool, std::vector overloads with no pool, which agree;
// - a struct payload moved by the vector overload of mpi_permute follows its keys, and a gather of
//   other ranks' items (nout != n);
// - failures throw sharedmem::error with SM_ERR_INVALID on every rank: the ranks passing different
//   key types to mpi_argsort, or different item types to mpi_permute, and an index out of range on
//   the last rank only; a normal call works afterwards.
// A failed check aborts every rank (nonzero exit).
#include <sharedmem_mpi.h>
#include <sharedmem.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>
#include <unistd.h>

#include "mpitest.hpp"

// How many keys rank r holds: uneven, none on rank 1 with 3 ranks or more.
static std::size_t count_on(int r) { return nranks_ >= 3 && r == 1 ? 0 : 300 + 211 * (std::size_t)r; }

// The global index of this rank's first element.
static std::int64_t offset_of(int r) {
    std::int64_t off = 0;
    for (int q = 0; q < r; q++) off += (std::int64_t)count_on(q);
    return off;
}

static std::int64_t total_count() { return offset_of(nranks_); }

static std::uint64_t next(std::uint64_t &state) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state;
}

// A key from random bits: few distinct values (repeats), sometimes the type's full range.
template <class T>
static T make_key(std::uint64_t bits, std::true_type /* floating */) {
    switch ((bits >> 20) % 16) {
    case 0: return std::numeric_limits<T>::quiet_NaN();
    case 1: return std::numeric_limits<T>::infinity();
    case 2: return -std::numeric_limits<T>::infinity();
    case 3: return T(-0.0);
    default: return T((double)((bits >> 33) % 37) * 0.5 - 9.0);
    }
}

template <class T>
static T make_key(std::uint64_t bits, std::false_type /* integral */) {
    if ((bits >> 20) % 4 == 0) return (T)(bits * 0xD6E8FEB86659FD93ULL);  // anywhere in range
    return (T)((bits >> 33) % 37 - (std::is_signed<T>::value ? 18 : 0));
}

// Gathers every rank's n items of T on rank 0 (in rank order).
template <class T>
static std::vector<T> gather(const T *mine, std::size_t n) {
    std::vector<int> counts(nranks_), displs(nranks_);
    int bytes = (int)(n * sizeof(T));
    MPI_Gather(&bytes, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    std::size_t total = 0;
    for (int r = 0; r < nranks_; r++) {
        displs[r] = (int)(total * sizeof(T));
        total += (std::size_t)counts[r] / sizeof(T);
    }
    std::vector<T> all(rank_ == 0 ? total : 0);
    MPI_Gatherv(mine, bytes, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0,
                MPI_COMM_WORLD);
    return all;
}

// One key type: see the top of the file.
template <class T>
static void sorts(sharedmem::pool &pool, const char *name) {
    const std::size_t n = count_on(rank_);
    std::uint64_t state = 0x9E3779B97F4A7C15ULL * (std::uint64_t)(rank_ + 1) + sizeof(T);
    std::vector<T> keys(n);
    for (std::size_t i = 0; i < n; i++)
        keys[i] = make_key<T>(next(state), std::is_floating_point<T>());
    std::vector<T> orig = keys;

    std::vector<std::int64_t> out(n, -1);
    sharedmem::mpi_argsort(&pool, MPI_COMM_WORLD, keys.data(), n, out.data());
    std::vector<std::int64_t> out_vec = sharedmem::mpi_argsort(nullptr, MPI_COMM_WORLD, keys);
    CHECK(out_vec == out, "%s: the vector overload (no pool) differs from the pointer one", name);
    CHECK(std::memcmp(orig.data(), keys.data(), n * sizeof(T)) == 0, "%s: the keys changed", name);

    sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, keys.data(), n, out.data(), n, keys.data());

    std::vector<T> all = gather(orig.data(), n);
    std::vector<std::int64_t> all_out = gather(out.data(), n);
    std::vector<T> all_sorted = gather(keys.data(), n);
    if (rank_ == 0) {
        std::size_t total = all.size();
        CHECK(total == (std::size_t)total_count(), "%s: gathered %zu keys", name, total);
        std::vector<std::int64_t> ref = sharedmem::argsort(nullptr, all);
        for (std::size_t i = 0; i < total; i++) {
            CHECK(all_out[i] == ref[i], "%s: position %zu: %lld, sm_argsort gives %lld", name, i,
                  (long long)all_out[i], (long long)ref[i]);
            CHECK(std::memcmp(&all_sorted[i], &all[(std::size_t)ref[i]], sizeof(T)) == 0,
                  "%s: position %zu: mpi_permute moved another key", name, i);
        }
    }
}

// The payload of a particle: its global index and a value derived from it.
struct item {
    std::int64_t global;
    double half;
};

// A struct payload through the vector overload; a gather of other ranks' items.
static void payload(sharedmem::pool &pool) {
    const std::size_t n = count_on(rank_);
    const std::int64_t offset = offset_of(rank_), total = total_count();
    std::vector<std::int32_t> keys(n);
    std::vector<item> items(n);
    for (std::size_t i = 0; i < n; i++) {
        std::int64_t g = offset + (std::int64_t)i;
        keys[i] = (std::int32_t)((g * 7919) % 101);
        items[i] = item{g, (double)g * 0.5};
    }
    std::vector<std::int64_t> order = sharedmem::mpi_argsort(&pool, MPI_COMM_WORLD, keys);
    std::vector<item> moved = sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, items, order);
    CHECK(moved.size() == n, "payload: %zu items moved, %zu expected", moved.size(), n);
    for (std::size_t i = 0; i < n; i++) {
        CHECK(moved[i].global == order[i] && moved[i].half == (double)order[i] * 0.5,
              "payload: position %zu holds item %lld, order says %lld", i,
              (long long)moved[i].global, (long long)order[i]);
        if (i > 0) {
            std::int32_t a = (std::int32_t)((moved[i - 1].global * 7919) % 101),
                         b = (std::int32_t)((moved[i].global * 7919) % 101);
            CHECK(a < b || (a == b && moved[i - 1].global < moved[i].global),
                  "payload: positions %zu and %zu out of stable order", i - 1, i);
        }
    }

    // nout != n: the first and the last item of the whole array, and this rank's rank-th item.
    std::vector<std::int64_t> want = {0, total - 1, (std::int64_t)rank_ % total};
    std::vector<item> got = sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, items, want);
    CHECK(got.size() == 3, "gather: %zu items", got.size());
    for (std::size_t i = 0; i < 3; i++)
        CHECK(got[i].global == want[i], "gather: item %lld came as %lld", (long long)want[i],
              (long long)got[i].global);
}

// Calls f, which must throw sharedmem::error with SM_ERR_INVALID (on every rank: each checks).
template <class F>
static void throws_invalid(const char *what, F f) {
    try {
        f();
        CHECK(false, "%s: no exception", what);
    } catch (const sharedmem::error &e) {
        CHECK(e.status() == SM_ERR_INVALID, "%s: status %d: %s", what, (int)e.status(), e.what());
        CHECK(std::strlen(e.message()) > 0, "%s: no message", what);
        if (rank_ == 0) std::printf("%s: %s\n", what, e.what());
    }
}

static void failures(sharedmem::pool &pool) {
    const std::size_t n = 8;
    std::vector<std::int64_t> ikeys(n), out(n), index(n);
    std::vector<double> dkeys(n);
    std::vector<std::int32_t> small(n);
    for (std::size_t i = 0; i < n; i++) {
        ikeys[i] = (std::int64_t)(n - i);
        dkeys[i] = (double)(n - i);
        small[i] = (std::int32_t)i;
        index[i] = (std::int64_t)i;
    }
    if (nranks_ > 1) {
        // rank 0 sorts doubles, the others int64_t (the same size: only the dtype differs)
        throws_invalid("mpi_argsort, key types differ", [&]() {
            if (rank_ == 0)
                sharedmem::mpi_argsort(&pool, MPI_COMM_WORLD, dkeys.data(), n, out.data());
            else
                sharedmem::mpi_argsort(&pool, MPI_COMM_WORLD, ikeys.data(), n, out.data());
        });
        // rank 0 moves int32_t items, the others int64_t
        throws_invalid("mpi_permute, item types differ", [&]() {
            if (rank_ == 0) {
                std::vector<std::int32_t> dst(n);
                sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, small.data(), n, index.data(), n,
                                       dst.data());
            } else {
                std::vector<std::int64_t> dst(n);
                sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, ikeys.data(), n, index.data(), n,
                                       dst.data());
            }
        });
    }
    // an index one past the end, on the last rank only
    std::vector<std::int64_t> bad = index;
    if (rank_ == nranks_ - 1) bad[n - 1] = (std::int64_t)(n * (std::size_t)nranks_);
    throws_invalid("mpi_permute, index out of range on the last rank", [&]() {
        sharedmem::mpi_permute(&pool, MPI_COMM_WORLD, ikeys, bad);
    });

    // and the next call works: every rank holds n, n-1, ..., 1, so the smallest keys (1) come
    // first, in rank order: global indices n-1, 2n-1, ...
    sharedmem::mpi_argsort(&pool, MPI_COMM_WORLD, ikeys.data(), n, out.data());
    if (rank_ == 0)
        for (std::size_t i = 0; i < n && i < (std::size_t)nranks_; i++)
            CHECK(out[i] == (std::int64_t)((i + 1) * n - 1), "after the failures: out[%zu] = %lld",
                  i, (long long)out[i]);
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks_);
    alarm(100);
    sharedmem::pool pool(2, SM_BACKEND_THREAD);

    sorts<double>(pool, "double");
    sorts<float>(pool, "float");
    sorts<std::int64_t>(pool, "int64_t");
    sorts<std::int32_t>(pool, "int32_t");
    sorts<std::int16_t>(pool, "int16_t");
    sorts<std::int8_t>(pool, "int8_t");
    sorts<std::uint64_t>(pool, "uint64_t");
    sorts<std::uint32_t>(pool, "uint32_t");
    sorts<std::uint16_t>(pool, "uint16_t");
    sorts<std::uint8_t>(pool, "uint8_t");
    payload(pool);
    failures(pool);

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ == 0) std::printf("test_cxx_sort: OK on %d rank(s)\n", nranks_);
    MPI_Finalize();
    return 0;
}
