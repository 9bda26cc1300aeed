/*
 * sharedmem.hpp: a small header-only C++ wrapper over the C API in sharedmem.h.
 * C++11 or later; link with the sharedmem library as for C (`sharedmem::sharedmem` in CMake).
 *
 *   #include <sharedmem.hpp>
 *
 *   sharedmem::pool pool(4);                        // 4 forked workers (SM_BACKEND_PROCESS)
 *   sharedmem::shared_array<double> squares(1000);  // zero-filled, seen by the caller and workers
 *   double sum = 0;
 *   sharedmem::outcome o = pool.map<double>(
 *       1000,
 *       [&](size_t job, double &result) {           // in a worker; result starts as zero bytes
 *           squares[job] = double(job) * job;
 *           result = squares[job];
 *       },
 *       [&](size_t, double &result) { sum += result; });  // in the caller, in job order
 *   // o == sharedmem::outcome::completed, sum == 332833500
 *
 *   pool.map(100, [&](size_t job) {                 // no result, no reduce
 *       sharedmem::critical_section lock(pool);     // mutual exclusion among the workers
 *       squares[0] += 1;
 *       if (job == 50) return sharedmem::stop;      // stop the map early: outcome::stopped
 *       return 0;
 *   });
 *
 *   std::vector<int64_t> order = sharedmem::argsort(&pool, keys, n);  // numpy stable argsort
 *
 * map() and its callables
 *   pool.map(njobs, work)                  work: (size_t job) -> void or int
 *   pool.map<R>(njobs, work, reduce)       work: (size_t job, R &result) -> void or int
 *                                          reduce: (size_t job, R &result) -> void or bool
 *   work returning int: 0 is success, sharedmem::stop (SM_STOP) stops the map early, any other
 *   value fails the map (sharedmem::error with status SM_ERR_JOB). reduce returning true stops the
 *   map. R must be trivially copyable: results are bytes that cross process boundaries, and each
 *   job's result starts as zero bytes (R's default constructor does not run).
 *
 *   map() returns outcome::completed when every job ran, outcome::stopped when a job returned
 *   sharedmem::stop or reduce returned true (SM_STOPPED is not an error). Every other status of
 *   sm_map is thrown as sharedmem::error. The callables are used by reference for the duration of
 *   the call (except work and region on SM_BACKEND_PERSISTENT, below); on SM_BACKEND_THREAD, work
 *   runs concurrently on several threads and must be thread-safe. On SM_BACKEND_PROCESS, work runs
 *   in forked children: what it writes to ordinary memory stays in the child; only results and
 *   shared_array memory come back.
 *
 *   On SM_BACKEND_PERSISTENT, the workers were forked once, when the pool was made, and see the
 *   caller's memory as it was then (shared_array memory excepted, which they see live). So the
 *   work or region callable is copied to them, as bytes, at each call (map, map<R>, map_local,
 *   parallel, parallel<T>, mpi_map): it must be trivially copyable (a lambda capturing by value
 *   numbers, pointers, shared_view and pool_ref is; one capturing a std::vector, std::string or
 *   std::function is not, and the call throws sharedmem::error SM_ERR_INVALID before anything
 *   runs). Capture by value: what it captures by reference, or points to, is read as it was at
 *   pool creation, the pool object itself included; a shared_array is reached through its view()
 *   and the pool, in critical_section, for_loop and the like, through a pool_ref:
 *
 *     sharedmem::pool pool(4, SM_BACKEND_PERSISTENT);
 *     sharedmem::shared_array<double> squares(1000);
 *     auto sq = squares.view();                     // pointer + size: trivially copyable
 *     sharedmem::pool_ref team = pool;
 *     double scale = 2;                             // set after the pool: copied at the call
 *     pool.map(1000, [=](size_t job) { sq[job] = scale * job * job; });  // the caller sees sq
 *     pool.parallel([=] {
 *         sharedmem::for_loop(team, 0, 1000, [&](size_t i) { sq[i] += 1; });
 *     });
 *
 *   Jobs of one call share one copy (a mutable lambda's captures are not per job or per worker).
 *   reduce and combine run on the caller and are used by reference, as on the other backends.
 *
 * Exceptions thrown by work or reduce never unwind through the C library: the trampolines catch
 * them, make the map fail (work) or stop (reduce), and map() then throws on the caller:
 *   - thrown by reduce, or by work on SM_BACKEND_THREAD / SM_BACKEND_SERIAL (or in debug mode, or
 *     in a map nested inside a job): the very same exception object is rethrown
 *     (std::rethrow_exception);
 *   - thrown by work in a worker process (SM_BACKEND_PROCESS, SM_BACKEND_PERSISTENT): the
 *     exception object cannot cross processes, so map() throws sharedmem::error with status
 *     SM_ERR_JOB and a message naming the job and carrying the original what() text (truncated
 *     to 495 bytes).
 * As in C, the failure reported is the first in job order; every job before it completed and was
 * reduced. An exception thrown by work at a job after a reduce stop (or after an earlier failure)
 * is discarded, like any later job's outcome.
 *
 * Parallel regions (sm_parallel), the OpenMP `parallel` / `for` / `barrier` / `single` model:
 *
 *   sharedmem::shared_array<double> y(n);
 *   pool.parallel([&] {                             // every worker runs this once, at once
 *       sharedmem::for_loop(pool, 0, n, [&](size_t i) { y[i] = f(i); });  // work-shared
 *       if (sharedmem::single(pool)) y[0] += 1;     // one worker (no barrier after it)
 *       sharedmem::barrier(pool);                   // wait for the whole team
 *   });
 *
 *   pool.parallel(region)                  region: () -> void or int (0, sharedmem::stop, or an
 *                                          error value), run once in every worker; returns
 *                                          outcome::completed or outcome::stopped, else throws
 *                                          as map() does (the failure named is a worker's)
 *   for_loop(pool, start, end, body,      body(i) for this worker's share of [start, end)
 *            schedule, chunk, flags)       (sm_for_next; schedule SM_SCHEDULE_STATIC, chunk 0 and
 *                                          flags 0 by default: a barrier at the end unless flags
 *                                          has SM_FOR_NOWAIT); every worker must run it
 *   barrier(pool), single(pool),           sm_barrier, sm_single (true for one worker),
 *   master(), num_workers()                sm_master, sm_num_workers
 *   critical_section / ordered_section     work in regions too
 * Per-worker results, the OpenMP `reduction(+: ...)` clause: each worker gets its own T (trivially
 * copyable, zero bytes at the start), reached with sharedmem::worker_local<T>() in the region or
 * job, and combine(T &) runs on the caller once per worker, in worker order, afterwards:
 *
 *   struct sums { double sx, sy; } total{};
 *   pool.parallel<sums>([&] {
 *       sums &s = sharedmem::worker_local<sums>();
 *       sharedmem::for_loop(pool, 0, n, [&](size_t i) { s.sx += x(i); s.sy += y(i); });
 *   }, [&](sums &s) { total.sx += s.sx; total.sy += s.sy; });
 *
 *   pool.parallel<T>(region, combine)      sm_parallel_ex with wresult_size = sizeof(T)
 *   pool.map_local<T>(njobs, work, combine)  sm_map_ex likewise; work: (size_t job) -> void or int
 *   worker_local<T>()                      sm_worker_local() as a T &; throws sharedmem::error
 *                                          (SM_ERR_STATE) outside a map or region that has one
 * combine runs only when the map or region succeeded or stopped; an exception from it is thrown by
 * parallel() / map_local() once the call is over.
 *
 * What a region writes follows map()'s rules: on SM_BACKEND_PROCESS the workers are forked
 * processes (only shared_array memory is shared; the lambda's captured locals are the caller's as
 * they were at the call), on SM_BACKEND_PERSISTENT likewise, with the region copied at the call
 * (capture by value), on SM_BACKEND_THREAD they are threads (the caller is worker 0).
 * An exception leaving the region fails it, and parallel() throws it on the caller (the same object
 * on thread/serial, a sharedmem::error SM_ERR_JOB with its what() text from a forked worker). When
 * the region is being stopped because another worker failed, barrier() throws sharedmem::error
 * with status SM_STOPPED: let it leave the region (parallel() expects it and does not report it),
 * and for_loop() returns without running the rest of its iterations.
 *
 * Across MPI ranks (sm_mpi_map, include/sharedmem_mpi.h): include <sharedmem_mpi.h> *before*
 * sharedmem.hpp, and pool gets mpi_map (sharedmem.hpp itself never includes mpi.h; link with
 * sharedmem::mpi):
 *
 *   pool.mpi_map(comm, root, njobs, work)            work: (size_t job) -> void or int
 *   pool.mpi_map<R>(comm, root, njobs, work, reduce) reduce runs on root only, in global job order
 *
 *   Collective over comm, as sm_mpi_map: every rank calls it with the same root, njobs and R, jobs
 *   are numbered globally and each rank runs its share on this pool. Every rank returns the same
 *   outcome, or throws: an exception thrown by work is rethrown on the rank that ran the job as
 *   map() does (the very object on thread/serial pools), and the other ranks throw
 *   sharedmem::error (SM_ERR_JOB) naming the job, that rank and the what() text; an exception
 *   thrown by reduce is rethrown on root, and the other ranks throw sharedmem::error
 *   (SM_STOPPED) saying so. Agreeing on that takes a few collectives on comm after a failed or
 *   stopped map, on the calling thread.
 *
 *   mpi_argsort(&pool, comm, keys, n, out)           numpy's stable argsort of the concatenation
 *                                                    of every rank's keys (sm_mpi_argsort): out
 *                                                    gets this rank's share, as global indices
 *   mpi_permute(&pool, comm, src, n, index, nout, dst)  dst[i] = global src[index[i]]
 *                                                    (sm_mpi_permute); both also on std::vector
 *
 *   Collective; keys of the types argsort takes (static_assert otherwise), items of any trivially
 *   copyable T; the pool (nullptr: none) sets the threads each rank sorts or copies with. Both
 *   throw sharedmem::error on failure, with the same status on every rank.
 *
 * Other pieces: critical_section / ordered_section (RAII guards over sm_critical_* /
 * sm_ordered_*, throwing sharedmem::error on misuse), shared_array<T> (RAII over sm_empty /
 * sm_free) and its view() (shared_view<T>), pool_ref, argsort(pool *, keys, n) for double,
 * float and 8/16/32/64-bit signed and unsigned integers, worker_id(), set_debug().
 * check(status) throws sharedmem::error for any status but SM_OK (SM_STOPPED included: map()
 * deals with SM_STOPPED itself before checking).
 */

#ifndef SHAREDMEM_HPP
#define SHAREDMEM_HPP

#include "sharedmem.h"

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

namespace sharedmem {

/// Return it from work() to stop the map early (SM_STOP). Not an error: map() returns
/// outcome::stopped.
constexpr int stop = SM_STOP;

/// How a map that did not throw ended.
enum class outcome {
    completed,  ///< every job ran (SM_OK)
    stopped,    ///< a job returned sharedmem::stop or reduce returned true (SM_STOPPED)
};

/// A failed sharedmem call: the sm_status and the library's message (sm_last_error() at the time).
/// what() is "<sm_status_str(status)>: <message>".
class error : public std::runtime_error {
public:
    /// The status and the calling thread's sm_last_error().
    explicit error(sm_status status) : error(status, sm_last_error()) {}

    error(sm_status status, const std::string &message)
        : std::runtime_error(std::string(sm_status_str(status)) + ": " + message),
          status_(status),
          prefix_(std::strlen(sm_status_str(status)) + 2) {}

    sm_status status() const noexcept { return status_; }

    /// The library's message alone (what() without the status prefix).
    const char *message() const noexcept { return what() + prefix_; }

private:
    sm_status status_;
    std::size_t prefix_;
};

/// Throws sharedmem::error(status) unless status is SM_OK (SM_STOPPED throws too).
inline void check(sm_status status) {
    if (status != SM_OK) throw error(status);
}

/// The calling worker's index inside a job (0..nworkers-1), -1 outside any map.
inline int worker_id() noexcept { return sm_worker_id(); }

/// Debug mode: every later map runs serially in the calling thread (sm_set_debug).
inline void set_debug(bool on) noexcept { sm_set_debug(on ? 1 : 0); }

/// The calling worker's per-worker result as a T (sm_worker_local), inside the region of
/// pool.parallel<T> or a job of pool.map_local<T> (or of any map or region whose wresult_size is
/// at least sizeof(T)). Throws sharedmem::error (SM_ERR_STATE) where there is none.
template <class T>
T &worker_local() {
    static_assert(std::is_trivially_copyable<T>::value,
                  "sharedmem: a per-worker result must be trivially copyable (it starts as zero bytes)");
    static_assert(alignof(T) <= SM_RESULT_ALIGN, "sharedmem: per-worker results are aligned to SM_RESULT_ALIGN");
    void *p = sm_worker_local();
    if (!p) throw error(sm_last_status());
    return *static_cast<T *>(p);
}

namespace detail {

/// work() returns this when it threw (spells "CXX!"); the C message names it, map() replaces it.
constexpr int exception_code = 0x43585821;

/// The first failure of a forked worker, in sm_empty memory (zero-filled: job_plus_one 0 = none).
/// One per worker, so that each has a single writer; the caller reads them after sm_map returns,
/// when every worker has been reaped.
struct shared_failure {
    std::uint64_t job_plus_one;
    std::int32_t code;  // exception_code or work()'s return value
    std::uint32_t threw_std_exception;
    char what[496];
};

/// Writes a failure of job `job` into the calling worker's shared record, unless it has an
/// earlier one. Each record has a single writer: its worker.
inline void record_shared(shared_failure *records, int nrecords, std::size_t job, int code, const char *what,
                          bool std_exception) noexcept {
    int w = sm_worker_id();
    if (!records || w < 0 || w >= nrecords) return;
    shared_failure &f = records[w];
    std::uint64_t j1 = static_cast<std::uint64_t>(job) + 1;
    if (f.job_plus_one != 0 && j1 >= f.job_plus_one) return;
    f.job_plus_one = j1;
    f.code = code;
    f.threw_std_exception = std_exception ? 1u : 0u;
    f.what[0] = '\0';
    if (what) {
        std::strncpy(f.what, what, sizeof f.what - 1);
        f.what[sizeof f.what - 1] = '\0';
    }
}

class failure_log;

/// How the work trampoline of a persistent pool records a failure. It travels by value inside
/// the copy of the call that the workers get: they see the caller's stack (and the failure_log
/// on it) as it was at sm_pool_new, but the shared records live in sm_empty memory, which they
/// see live.
struct failure_sink {
    shared_failure *shared;
    int nshared;
    pid_t caller;
    /// Dereferenced only in the caller's own process (debug mode, a map nested in a job), where
    /// it is live: there the very exception object is kept, as on the other backends.
    failure_log *log;

    inline void record(std::size_t job, int code, std::exception_ptr ex, const char *what,
                       bool std_exception) const noexcept;
};

/// Failures of one map: the first (in job order) recorded in this process, a reduce exception,
/// and, for pools of processes, the per-worker records of their workers.
class failure_log {
public:
    failure_log() = default;
    /// region: the log of a parallel region, whose "jobs" are the workers' ranks.
    explicit failure_log(bool region) : region_(region) {}
    failure_log(const failure_log &) = delete;
    failure_log &operator=(const failure_log &) = delete;
    ~failure_log() {
        if (shared_) sm_free(shared_);
    }

    /// Pools of processes (process and persistent), outside a job: allocate one shared record per
    /// worker (best effort: without them, a worker's exception is reported as a plain SM_ERR_JOB).
    void share(int nworkers) {
        if (nworkers <= 0 || sm_worker_id() >= 0) return;
        shared_ = static_cast<shared_failure *>(
            sm_empty(static_cast<std::size_t>(nworkers), sizeof(shared_failure)));
        nshared_ = shared_ ? nworkers : 0;
    }

    /// What a persistent pool's workers record failures through (after share()).
    failure_sink sink() noexcept { return failure_sink{shared_, nshared_, getpid(), this}; }

    /// Called by the work trampoline (in a worker: a thread, the caller, or a forked child) when
    /// job `job` failed with `code`; `ex` is set when it threw.
    void record(std::size_t job, int code, std::exception_ptr ex, const char *what,
                bool std_exception) noexcept {
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!has_local_ || job < local_job_) {
                has_local_ = true;
                local_job_ = job;
                local_code_ = code;
                local_ex_ = ex;
            }
        } catch (...) {
        }
        record_shared(shared_, nshared_, job, code, what, std_exception);
    }

    /// Called by the reduce trampoline (always on the caller thread).
    void record_reduce(std::exception_ptr ex) noexcept {
        if (!reduce_ex_) reduce_ex_ = ex;
    }

    /// Whether reduce (or combine) threw.
    bool reduce_threw() const noexcept { return static_cast<bool>(reduce_ex_); }

    /// The first failure (in job order) recorded in this process or its forked workers: false if
    /// none; else its job, code, and the what() text of an exception (empty if not a
    /// std::exception). Read after the map, once every worker is done.
    bool first_failure(std::size_t &job, int &code, std::string &what) const {
        const shared_failure *first_shared = nullptr;
        for (int w = 0; w < nshared_; ++w) {
            const shared_failure &f = shared_[w];
            if (f.job_plus_one != 0 && (!first_shared || f.job_plus_one < first_shared->job_plus_one))
                first_shared = &f;
        }
        if (has_local_ && (!first_shared || static_cast<std::uint64_t>(local_job_) + 1 <= first_shared->job_plus_one)) {
            job = local_job_;
            code = local_code_;
            what.clear();
            if (local_ex_) {
                try {
                    std::rethrow_exception(local_ex_);
                } catch (const std::exception &e) {
                    what = e.what();
                } catch (...) {
                }
            }
            return true;
        }
        if (!first_shared) return false;
        job = static_cast<std::size_t>(first_shared->job_plus_one - 1);
        code = first_shared->code;
        what = first_shared->threw_std_exception ? first_shared->what : "";
        return true;
    }

    /// Turns sm_map's status into an outcome, or throws.
    outcome finish(sm_status status) {
        if (reduce_ex_) std::rethrow_exception(reduce_ex_);
        if (status == SM_OK) return outcome::completed;
        if (status == SM_STOPPED) return outcome::stopped;
        if (status == SM_ERR_JOB) {
            // The failure sm_map reports is the first in job order: find it among our records.
            const shared_failure *first_shared = nullptr;
            for (int w = 0; w < nshared_; ++w) {
                const shared_failure &f = shared_[w];
                if (f.job_plus_one != 0 &&
                    (!first_shared || f.job_plus_one < first_shared->job_plus_one))
                    first_shared = &f;
            }
            bool local_first =
                has_local_ &&
                (!first_shared || static_cast<std::uint64_t>(local_job_) + 1 <= first_shared->job_plus_one);
            if (local_first) {
                if (local_code_ == exception_code && local_ex_) std::rethrow_exception(local_ex_);
            } else if (first_shared && first_shared->code == exception_code) {
                std::string msg = (region_ ? "the region of worker " : "job ") +
                                  std::to_string(first_shared->job_plus_one - 1) +
                                  " threw an exception in a worker process";
                if (first_shared->threw_std_exception)
                    msg += ": " + std::string(first_shared->what);
                else
                    msg += " (not a std::exception)";
                if (!region_) msg += "; every job before it completed (and was reduced)";
                throw error(SM_ERR_JOB, msg);
            }
        }
        throw error(status);
    }

private:
    bool region_ = false;
    std::mutex mutex_;
    bool has_local_ = false;
    std::size_t local_job_ = 0;
    int local_code_ = 0;
    std::exception_ptr local_ex_;
    std::exception_ptr reduce_ex_;
    shared_failure *shared_ = nullptr;
    int nshared_ = 0;
};

inline void failure_sink::record(std::size_t job, int code, std::exception_ptr ex, const char *what,
                                 bool std_exception) const noexcept {
    if (getpid() == caller)
        log->record(job, code, ex, what, std_exception);
    else
        record_shared(shared, nshared, job, code, what, std_exception);
}

// Calling work / reduce whatever they return.
template <class F, class... A>
using call_result_t = decltype(std::declval<F &>()(std::declval<A>()...));

template <class F, class... A>
int call_work(std::true_type /*returns void*/, F &f, A &&...a) {
    f(std::forward<A>(a)...);
    return 0;
}
template <class F, class... A>
int call_work(std::false_type, F &f, A &&...a) {
    return static_cast<int>(f(std::forward<A>(a)...));
}
template <class F, class... A>
bool call_reduce(std::true_type /*returns void*/, F &f, A &&...a) {
    f(std::forward<A>(a)...);
    return false;
}
template <class F, class... A>
bool call_reduce(std::false_type, F &f, A &&...a) {
    return static_cast<bool>(f(std::forward<A>(a)...));
}

template <class Ret>
struct valid_work_return
    : std::integral_constant<bool, std::is_void<Ret>::value ||
                                       (std::is_convertible<Ret, int>::value &&
                                        !std::is_same<typename std::decay<Ret>::type, bool>::value)> {};

template <class Ret>
struct valid_reduce_return
    : std::integral_constant<bool, std::is_void<Ret>::value || std::is_convertible<Ret, bool>::value> {};

/// Runs f(R &) on the result bytes at p: in place when suitably aligned (always, in practice:
/// the library aligns results up to 16 bytes), else through an aligned copy.
template <class R, class F>
auto with_result(void *p, F &&f) -> decltype(f(std::declval<R &>())) {
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(R) == 0) return f(*static_cast<R *>(p));
    struct copy_back {
        void *dst;
        const void *src;
        ~copy_back() { std::memcpy(dst, src, sizeof(R)); }
    };
    alignas(R) unsigned char buf[sizeof(R)];
    std::memcpy(buf, p, sizeof(R));
    copy_back guard{p, buf};
    return f(*static_cast<R *>(static_cast<void *>(buf)));
}

/// The callable of a call on a pool whose workers share the caller's memory as it is now (thread,
/// serial, process: forked at the call): reached through a pointer, failures recorded in the log.
template <class F>
struct by_reference {
    F *f;
    failure_log *log;

    F &get() const noexcept { return *f; }
    void record(std::size_t job, int code, std::exception_ptr ex, const char *what,
                bool std_exception) const noexcept {
        log->record(job, code, ex, what, std_exception);
    }
    /// The log, on the caller (reduce and combine trampolines).
    failure_log &caller_log() const noexcept { return *log; }
};

/// The callable of a call on a persistent pool: its bytes, copied for the workers (opts.ctx_size)
/// at each call, since a pointer to it would be read in the caller's memory as it was at
/// sm_pool_new.
template <class F>
struct by_value {
    F f;
    failure_sink sink;

    F &get() noexcept { return f; }
    void record(std::size_t job, int code, std::exception_ptr ex, const char *what,
                bool std_exception) const noexcept {
        sink.record(job, code, ex, what, std_exception);
    }
    /// Only on the caller, whose ctx is the original (the library copies it for the workers).
    failure_log &caller_log() const noexcept { return *sink.log; }
};

/// Whether a callable can be copied to persistent workers as bytes (which the library aligns
/// to 64).
template <class F>
struct copyable_callable
    : std::integral_constant<bool, std::is_trivially_copyable<typename std::decay<F>::type>::value &&
                                       alignof(typename std::decay<F>::type) <= 64> {};

/// The holder of F on a persistent pool: by_value when F can be copied, else by_reference, which
/// copy_callable refuses before anything runs.
template <class F>
using copied_callable = typename std::conditional<copyable_callable<F>::value,
                                                  by_value<typename std::decay<F>::type>,
                                                  by_reference<F>>::type;

template <class F>
by_value<typename std::decay<F>::type> copy_callable(F &f, failure_log &log, std::true_type) {
    by_value<typename std::decay<F>::type> v = {f, log.sink()};
    return v;
}

template <class F>
by_reference<F> copy_callable(F &, failure_log &, std::false_type) {
    throw error(SM_ERR_INVALID,
                "the workers of a persistent pool (SM_BACKEND_PERSISTENT) were forked when the pool "
                "was made, so the work or region callable is copied to them as bytes at each call, "
                "and this one is not trivially copyable (or is aligned to more than 64 bytes): "
                "capture by value only trivially copyable things (numbers, pointers, "
                "sharedmem::shared_view, sharedmem::pool_ref), not std::vector, std::string or "
                "std::function, and reach shared memory through shared_array::view()");
}

/// The options of a call: the library's defaults, with ctx_size bytes of ctx copied for the
/// workers (0: they get ctx itself).
inline sm_map_opts map_options(std::size_t ctx_size) noexcept {
    sm_map_opts o;
    std::memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.ctx_size = ctx_size;
    return o;
}

/// The call objects below hold the work or region callable in `fn`, a by_reference or by_value.
template <class Fn>
struct plain_map {
    Fn fn;

    static int work_trampoline(void *ctx, std::size_t job, void *) noexcept {
        plain_map &m = *static_cast<plain_map *>(ctx);
        try {
            auto &work = m.fn.get();
            typedef call_result_t<decltype(work), std::size_t> ret;
            int code = call_work(std::is_void<ret>(), work, job);
            if (code != 0 && code != SM_STOP) m.fn.record(job, code, nullptr, nullptr, false);
            return code;
        } catch (const std::exception &e) {
            m.fn.record(job, exception_code, std::current_exception(), e.what(), true);
        } catch (...) {
            m.fn.record(job, exception_code, std::current_exception(), nullptr, false);
        }
        return exception_code;
    }
};

template <class R, class Fn, class Reduce>
struct typed_map {
    Fn fn;
    Reduce *reduce;

    static int work_trampoline(void *ctx, std::size_t job, void *result) noexcept {
        typed_map &m = *static_cast<typed_map *>(ctx);
        try {
            auto &w = m.fn.get();
            typedef call_result_t<decltype(w), std::size_t, R &> ret;
            int code = with_result<R>(result, [&](R &r) { return call_work(std::is_void<ret>(), w, job, r); });
            if (code != 0 && code != SM_STOP) m.fn.record(job, code, nullptr, nullptr, false);
            return code;
        } catch (const std::exception &e) {
            m.fn.record(job, exception_code, std::current_exception(), e.what(), true);
        } catch (...) {
            m.fn.record(job, exception_code, std::current_exception(), nullptr, false);
        }
        return exception_code;
    }

    static int reduce_trampoline(void *ctx, std::size_t job, void *result) noexcept {
        typed_map &m = *static_cast<typed_map *>(ctx);
        try {
            typedef call_result_t<Reduce, std::size_t, R &> ret;
            Reduce &red = *m.reduce;
            bool stop_now =
                with_result<R>(result, [&](R &r) { return call_reduce(std::is_void<ret>(), red, job, r); });
            return stop_now ? 1 : 0;
        } catch (...) {
            m.fn.caller_log().record_reduce(std::current_exception());
        }
        return 1;
    }
};

template <class Fn>
struct region_call {
    Fn fn;

    static int trampoline(void *ctx) noexcept {
        region_call &r = *static_cast<region_call *>(ctx);
        int w = sm_worker_id();
        std::size_t me = w > 0 ? static_cast<std::size_t>(w) : 0;
        try {
            auto &region = r.fn.get();
            typedef call_result_t<decltype(region)> ret;
            int code = call_work(std::is_void<ret>(), region);
            if (code != 0 && code != SM_STOP) r.fn.record(me, code, nullptr, nullptr, false);
            return code;
        } catch (const error &e) {
            // barrier() saw the region being stopped (another worker failed): leave quietly.
            if (e.status() == SM_STOPPED) return 0;
            r.fn.record(me, exception_code, std::current_exception(), e.what(), true);
        } catch (const std::exception &e) {
            r.fn.record(me, exception_code, std::current_exception(), e.what(), true);
        } catch (...) {
            r.fn.record(me, exception_code, std::current_exception(), nullptr, false);
        }
        return exception_code;
    }
};

/// A map's or region's call object (`Inner`: plain_map or region_call) with a combine(T &) for the
/// per-worker results: sm_map_ex / sm_parallel_ex get this as ctx.
template <class T, class Combine, class Inner>
struct with_combine {
    Inner inner;
    Combine *combine;

    static int work_trampoline(void *ctx, std::size_t job, void *result) noexcept {
        return Inner::work_trampoline(&static_cast<with_combine *>(ctx)->inner, job, result);
    }
    static int region_trampoline(void *ctx) noexcept {
        return Inner::trampoline(&static_cast<with_combine *>(ctx)->inner);
    }
    static int combine_trampoline(void *ctx, int, void *wresult) noexcept {
        with_combine &c = *static_cast<with_combine *>(ctx);
        try {
            (*c.combine)(*static_cast<T *>(wresult));
            return 0;
        } catch (...) {
            c.inner.fn.caller_log().record_reduce(std::current_exception());
        }
        return 1;
    }
    /// ctx_size: sizeof(with_combine) on a persistent pool, else 0.
    static sm_map_opts options(std::size_t ctx_size) noexcept {
        sm_map_opts o = map_options(ctx_size);
        o.wresult_size = sizeof(T);
        o.worker_reduce = &combine_trampoline;
        return o;
    }
};

/// The checks of map<R> and mpi_map<R>, with their messages.
template <class R, class Work, class Reduce>
struct valid_typed_map {
    static_assert(std::is_trivially_copyable<R>::value,
                  "sharedmem: the result type R must be trivially copyable (results cross "
                  "process and node boundaries as bytes)");
    static_assert(!std::is_const<R>::value && !std::is_reference<R>::value,
                  "sharedmem: R must be a plain object type");
    static_assert(valid_work_return<call_result_t<Work, std::size_t, R &>>::value,
                  "sharedmem: work(size_t job, R &result) must return void or int (0: done, "
                  "sharedmem::stop: stop the map, anything else: an error)");
    static_assert(valid_reduce_return<call_result_t<Reduce, std::size_t, R &>>::value,
                  "sharedmem: reduce(size_t job, R &result) must return void or bool (true: stop)");
    static constexpr bool value = true;
};

template <class T, class Combine>
struct valid_local {
    static_assert(std::is_trivially_copyable<T>::value && !std::is_const<T>::value,
                  "sharedmem: the per-worker type T must be trivially copyable (it starts as zero "
                  "bytes and crosses process boundaries as bytes)");
    static_assert(alignof(T) <= SM_RESULT_ALIGN, "sharedmem: per-worker results are aligned to SM_RESULT_ALIGN");
    static_assert(std::is_void<call_result_t<Combine, T &>>::value,
                  "sharedmem: combine(T &partial) must return void");
    static constexpr bool value = true;
};

#ifdef SHAREDMEM_MPI_H
/// After sm_mpi_map returned `status` on every rank of `comm`: the outcome, or the exception to
/// throw. A job's exception lives on the rank that ran it, reduce's on root: when the map failed
/// or stopped, the ranks agree (collectively, on the calling thread) on where the failure was.
inline outcome mpi_finish(MPI_Comm comm, int root, failure_log &log, sm_status status) {
    if (status != SM_STOPPED && status != SM_ERR_JOB) return log.finish(status);
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (status == SM_STOPPED) {
        int threw = log.reduce_threw() ? 1 : 0;  // reduce runs on root only
        MPI_Bcast(&threw, 1, MPI_INT, root, comm);
        if (!threw) return outcome::stopped;
        if (rank == root) return log.finish(status);  // rethrows reduce's exception
        throw error(SM_STOPPED, "sm_mpi_map: reduce threw an exception on root (rank " +
                                    std::to_string(root) + "), which stopped the map");
    }
    // SM_ERR_JOB: the failure reported is the first in job order over all ranks, recorded by the
    // rank that ran it. (Compared as signed numbers: MPICH 4.0's MPI_MIN on unsigned long long
    // compares them as signed.)
    std::size_t job = 0;
    int code = 0;
    std::string what;
    bool mine = log.first_failure(job, code, what);
    long long my_job = mine ? static_cast<long long>(job) : LLONG_MAX, first = LLONG_MAX;
    MPI_Allreduce(&my_job, &first, 1, MPI_LONG_LONG, MPI_MIN, comm);
    int me = (mine && my_job == first) ? rank : INT_MAX, owner = INT_MAX;
    MPI_Allreduce(&me, &owner, 1, MPI_INT, MPI_MIN, comm);
    if (owner == INT_MAX) throw error(status);  // e.g. a failing worker_init: the C message says
    int threw = (rank == owner && code == exception_code) ? 1 : 0;
    MPI_Bcast(&threw, 1, MPI_INT, owner, comm);
    if (!threw) throw error(status);  // a job returned an error value: the C message names it
    char text[496] = {0};
    if (rank == owner) std::strncpy(text, what.c_str(), sizeof text - 1);
    MPI_Bcast(text, static_cast<int>(sizeof text), MPI_CHAR, owner, comm);
    if (rank == owner) return log.finish(status);  // rethrows as map() does
    throw error(SM_ERR_JOB, "sm_mpi_map: job " + std::to_string(first) +
                                " threw an exception on rank " + std::to_string(owner) +
                                (text[0] ? ": " + std::string(text) : std::string()));
}
#endif  // SHAREDMEM_MPI_H

}  // namespace detail

/// A pool of workers (sm_pool_new / sm_pool_free). Move-only.
class pool {
public:
    /// nworkers <= 0: OMP_NUM_THREADS or the number of CPUs. Throws sharedmem::error on failure,
    /// with the library's status and message (sm_last_status, sm_last_error).
    explicit pool(int nworkers = 0, sm_backend backend = SM_BACKEND_PROCESS)
        : pool_(sm_pool_new(nworkers, backend)), backend_(backend) {
        if (!pool_) throw error(sm_last_status());
    }

    /// sm_pool_free: refused by the library (and the pool leaked) only while another thread maps
    /// on it, or inside a job.
    ~pool() { sm_pool_free(pool_); }

    pool(pool &&other) noexcept : pool_(other.pool_), backend_(other.backend_) { other.pool_ = nullptr; }
    pool &operator=(pool &&other) noexcept {
        if (this != &other) {
            sm_pool_free(pool_);
            pool_ = other.pool_;
            backend_ = other.backend_;
            other.pool_ = nullptr;
        }
        return *this;
    }
    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;

    /// The raw pool (NULL once moved from).
    sm_pool *get() const noexcept { return pool_; }
    sm_backend backend() const noexcept { return backend_; }
    /// The number of workers (-1 once moved from).
    int nworkers() const noexcept { return sm_pool_nworkers(pool_); }

    /// Runs work(job) for job in [0, njobs). work returns void or int (0, sharedmem::stop, or an
    /// error value). Returns outcome::completed or outcome::stopped; throws sharedmem::error (or
    /// the exception work threw) otherwise.
    template <class Work>
    outcome map(std::size_t njobs, Work &&work) {
        typedef typename std::remove_reference<Work>::type work_type;
        static_assert(detail::valid_work_return<detail::call_result_t<work_type, std::size_t>>::value,
                      "sharedmem: work(size_t job) must return void or int (0: done, "
                      "sharedmem::stop: stop the map, anything else: an error)");
        detail::failure_log log;
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::plain_map<detail::copied_callable<work_type>> map_type;
            map_type m{detail::copy_callable(work, log, detail::copyable_callable<work_type>())};
            sm_map_opts o = detail::map_options(sizeof m);
            return log.finish(sm_map_ex(pool_, njobs, &map_type::work_trampoline, nullptr, 0, &m, &o));
        }
        typedef detail::plain_map<detail::by_reference<work_type>> map_type;
        map_type m{{&work, &log}};
        return log.finish(sm_map(pool_, njobs, &map_type::work_trampoline, nullptr, 0, &m));
    }

    /// Runs work(job, result) for job in [0, njobs) on the workers and reduce(job, result) on the
    /// caller, in job order, with each job's result of type R (trivially copyable; starts as zero
    /// bytes). work returns void or int; reduce returns void or bool (true: stop the map).
    template <class R, class Work, class Reduce>
    outcome map(std::size_t njobs, Work &&work, Reduce &&reduce) {
        typedef typename std::remove_reference<Work>::type work_type;
        typedef typename std::remove_reference<Reduce>::type reduce_type;
        static_assert(detail::valid_typed_map<R, work_type, reduce_type>::value, "");
        detail::failure_log log;
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::typed_map<R, detail::copied_callable<work_type>, reduce_type> map_type;
            map_type m{detail::copy_callable(work, log, detail::copyable_callable<work_type>()), &reduce};
            sm_map_opts o = detail::map_options(sizeof m);
            return log.finish(sm_map_ex(pool_, njobs, &map_type::work_trampoline, &map_type::reduce_trampoline,
                                        sizeof(R), &m, &o));
        }
        typedef detail::typed_map<R, detail::by_reference<work_type>, reduce_type> map_type;
        map_type m{{&work, &log}, &reduce};
        sm_status s = sm_map(pool_, njobs, &map_type::work_trampoline, &map_type::reduce_trampoline,
                             sizeof(R), &m);
        return log.finish(s);
    }

    /// Runs region() once in every worker of the pool, all at the same time (sm_parallel). region
    /// returns void or int (0, sharedmem::stop, or an error value) and uses for_loop, barrier,
    /// single, master and the section guards. Returns outcome::completed or outcome::stopped (a
    /// worker returned sharedmem::stop); throws sharedmem::error (or the exception region threw)
    /// otherwise.
    template <class Region>
    outcome parallel(Region &&region) {
        typedef typename std::remove_reference<Region>::type region_type;
        static_assert(detail::valid_work_return<detail::call_result_t<region_type>>::value,
                      "sharedmem: region() must return void or int (0: done, sharedmem::stop: "
                      "stop the region, anything else: an error)");
        detail::failure_log log(true);
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::region_call<detail::copied_callable<region_type>> call_type;
            call_type r{detail::copy_callable(region, log, detail::copyable_callable<region_type>())};
            sm_map_opts o = detail::map_options(sizeof r);
            return log.finish(sm_parallel_ex(pool_, &call_type::trampoline, &r, &o));
        }
        typedef detail::region_call<detail::by_reference<region_type>> call_type;
        call_type r{{&region, &log}};
        return log.finish(sm_parallel(pool_, &call_type::trampoline, &r));
    }

    /// parallel(region) with a per-worker T (sm_parallel_ex): region reaches its worker's T,
    /// zeroed at the start, with worker_local<T>(); combine(T &) then runs on the caller once per
    /// worker, in worker order, when the region succeeded or stopped.
    template <class T, class Region, class Combine>
    outcome parallel(Region &&region, Combine &&combine) {
        typedef typename std::remove_reference<Region>::type region_type;
        typedef typename std::remove_reference<Combine>::type combine_type;
        static_assert(detail::valid_local<T, combine_type>::value, "");
        static_assert(detail::valid_work_return<detail::call_result_t<region_type>>::value,
                      "sharedmem: region() must return void or int");
        detail::failure_log log(true);
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::with_combine<T, combine_type, detail::region_call<detail::copied_callable<region_type>>>
                call_type;
            call_type c{{detail::copy_callable(region, log, detail::copyable_callable<region_type>())}, &combine};
            sm_map_opts o = call_type::options(sizeof c);
            return log.finish(sm_parallel_ex(pool_, &call_type::region_trampoline, &c, &o));
        }
        typedef detail::with_combine<T, combine_type, detail::region_call<detail::by_reference<region_type>>>
            call_type;
        call_type c{{{&region, &log}}, &combine};
        sm_map_opts o = call_type::options(0);
        return log.finish(sm_parallel_ex(pool_, &call_type::region_trampoline, &c, &o));
    }

    /// map(njobs, work) with a per-worker T (sm_map_ex): jobs reach their worker's T, zeroed at
    /// the start, with worker_local<T>(); combine(T &) then runs on the caller once per worker,
    /// in worker order, when the map succeeded or stopped.
    template <class T, class Work, class Combine>
    outcome map_local(std::size_t njobs, Work &&work, Combine &&combine) {
        typedef typename std::remove_reference<Work>::type work_type;
        typedef typename std::remove_reference<Combine>::type combine_type;
        static_assert(detail::valid_local<T, combine_type>::value, "");
        static_assert(detail::valid_work_return<detail::call_result_t<work_type, std::size_t>>::value,
                      "sharedmem: work(size_t job) must return void or int");
        detail::failure_log log;
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::with_combine<T, combine_type, detail::plain_map<detail::copied_callable<work_type>>>
                call_type;
            call_type c{{detail::copy_callable(work, log, detail::copyable_callable<work_type>())}, &combine};
            sm_map_opts o = call_type::options(sizeof c);
            return log.finish(sm_map_ex(pool_, njobs, &call_type::work_trampoline, nullptr, 0, &c, &o));
        }
        typedef detail::with_combine<T, combine_type, detail::plain_map<detail::by_reference<work_type>>>
            call_type;
        call_type c{{{&work, &log}}, &combine};
        sm_map_opts o = call_type::options(0);
        return log.finish(sm_map_ex(pool_, njobs, &call_type::work_trampoline, nullptr, 0, &c, &o));
    }

#ifdef SHAREDMEM_MPI_H
    /// map(njobs, work) across the ranks of comm (sm_mpi_map): collective; jobs are numbered
    /// globally and this rank runs its share on this pool. Returns the same outcome on every rank,
    /// or throws (see the top of this file).
    template <class Work>
    outcome mpi_map(MPI_Comm comm, int root, std::size_t njobs, Work &&work) {
        typedef typename std::remove_reference<Work>::type work_type;
        static_assert(detail::valid_work_return<detail::call_result_t<work_type, std::size_t>>::value,
                      "sharedmem: work(size_t job) must return void or int (0: done, "
                      "sharedmem::stop: stop the map, anything else: an error)");
        detail::failure_log log;
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::plain_map<detail::copied_callable<work_type>> map_type;
            map_type m{detail::copy_callable(work, log, detail::copyable_callable<work_type>())};
            return mpi_run(comm, root, njobs, &map_type::work_trampoline, nullptr, 0, m, log);
        }
        typedef detail::plain_map<detail::by_reference<work_type>> map_type;
        map_type m{{&work, &log}};
        return mpi_run(comm, root, njobs, &map_type::work_trampoline, nullptr, 0, m, log);
    }

    /// map<R>(njobs, work, reduce) across the ranks of comm (sm_mpi_map): reduce runs on root
    /// only, in global job order, with each job's R. Collective; every rank passes the same R.
    template <class R, class Work, class Reduce>
    outcome mpi_map(MPI_Comm comm, int root, std::size_t njobs, Work &&work, Reduce &&reduce) {
        typedef typename std::remove_reference<Work>::type work_type;
        typedef typename std::remove_reference<Reduce>::type reduce_type;
        static_assert(detail::valid_typed_map<R, work_type, reduce_type>::value, "");
        detail::failure_log log;
        if (forks()) log.share(nworkers());
        if (backend_ == SM_BACKEND_PERSISTENT) {
            typedef detail::typed_map<R, detail::copied_callable<work_type>, reduce_type> map_type;
            map_type m{detail::copy_callable(work, log, detail::copyable_callable<work_type>()), &reduce};
            return mpi_run(comm, root, njobs, &map_type::work_trampoline, &map_type::reduce_trampoline,
                           sizeof(R), m, log);
        }
        typedef detail::typed_map<R, detail::by_reference<work_type>, reduce_type> map_type;
        map_type m{{&work, &log}, &reduce};
        return mpi_run(comm, root, njobs, &map_type::work_trampoline, &map_type::reduce_trampoline, sizeof(R),
                       m, log);
    }
#endif  // SHAREDMEM_MPI_H

private:
    /// Whether the workers are processes, whose failures come back through shared records.
    bool forks() const noexcept { return backend_ == SM_BACKEND_PROCESS || backend_ == SM_BACKEND_PERSISTENT; }

#ifdef SHAREDMEM_MPI_H
    /// sm_mpi_map_ex with the call object m as ctx, copied for the workers on a persistent pool.
    /// Every backend passes options, all of them zero but ctx_size: the ranks must agree on
    /// whether options are given, and their pools need not share a backend.
    template <class Call>
    outcome mpi_run(MPI_Comm comm, int root, std::size_t njobs, sm_work_fn work, sm_reduce_fn reduce,
                    std::size_t result_size, Call &m, detail::failure_log &log) {
        sm_map_opts o = detail::map_options(backend_ == SM_BACKEND_PERSISTENT ? sizeof m : 0);
        sm_status s = sm_mpi_map_ex(pool_, comm, root, njobs, work, reduce, result_size, &m, &o);
        return detail::mpi_finish(comm, root, log, s);
    }
#endif  // SHAREDMEM_MPI_H

    sm_pool *pool_;
    sm_backend backend_;
};

/// Names a pool in its jobs and regions, for critical_section, ordered_section, for_loop, barrier
/// and single: a pool converts to it. Unlike the pool object (move-only, and read through a
/// reference in the caller's memory as it was at sm_pool_new by persistent workers), it is
/// trivially copyable, so a callable for a persistent pool captures it by value:
///   sharedmem::pool_ref team = pool;
///   pool.map(n, [=](size_t) { sharedmem::critical_section lock(team); ... });
class pool_ref {
public:
    pool_ref(const pool &p) noexcept : pool_(p.get()) {}
    sm_pool *get() const noexcept { return pool_; }

private:
    sm_pool *pool_;
};

/// The work-shared loop of a region (sm_for_next): body(i) for the iterations i of [start, end)
/// that fall to this worker; each runs in exactly one worker. Every worker of the region must call
/// it, with the same arguments. Returns when this worker has no more iterations: after the whole
/// team is done (a barrier) unless flags has SM_FOR_NOWAIT; also, early, when the region is being
/// stopped. With SM_FOR_ORDERED, an ordered_section in body runs in iteration order.
template <class Body>
void for_loop(pool_ref p, std::size_t start, std::size_t end, Body &&body,
              sm_schedule schedule = SM_SCHEDULE_STATIC, std::size_t chunk = 0, int flags = 0) {
    std::size_t lo = 0, hi = 0;
    while (sm_for_next(p.get(), start, end, schedule, chunk, flags, &lo, &hi))
        for (std::size_t i = lo; i < hi; ++i) body(i);
}

/// Waits for every worker of the region (sm_barrier). Throws sharedmem::error: SM_STOPPED when
/// the region is being stopped (let it leave the region: parallel() does not report it),
/// SM_ERR_STATE on misuse (outside a region, inside a section, a worker that left the region).
inline void barrier(pool_ref p) { check(sm_barrier(p.get())); }

/// true in exactly one worker (the first to get there) each time the team reaches it (sm_single);
/// no barrier after it. Throws sharedmem::error (SM_ERR_STATE) outside a region.
inline bool single(pool_ref p) {
    int r = sm_single(p.get());
    if (r < 0) throw error(sm_last_status());
    return r != 0;
}

/// true in worker 0 of a region or map, and outside any map (sm_master).
inline bool master() noexcept { return sm_master() != 0; }

/// The number of workers of the running region or map (its team); 1 outside any map.
inline int num_workers() noexcept { return sm_num_workers(); }

/// Mutual exclusion among the workers of the running map, for the life of the object (inside a
/// job only). Throws sharedmem::error (SM_ERR_STATE, SM_ERR_INVALID) on misuse.
class critical_section {
public:
    explicit critical_section(pool_ref p) : pool_(p.get()) { check(sm_critical_enter(pool_)); }
    ~critical_section() { sm_critical_leave(pool_); }
    critical_section(const critical_section &) = delete;
    critical_section &operator=(const critical_section &) = delete;

private:
    sm_pool *pool_;
};

/// Runs the rest of the scope in job order (sm_ordered_enter / sm_ordered_leave); at most one per
/// job, not inside a critical_section. Throws sharedmem::error on misuse.
class ordered_section {
public:
    explicit ordered_section(pool_ref p) : pool_(p.get()) { check(sm_ordered_enter(pool_)); }
    ~ordered_section() { sm_ordered_leave(pool_); }
    ordered_section(const ordered_section &) = delete;
    ordered_section &operator=(const ordered_section &) = delete;

private:
    sm_pool *pool_;
};

/// A view of shared_array memory (a pointer and a size, as std::span): what callables for a
/// persistent pool capture by value, since they are copied to the workers as bytes, and a
/// shared_array is move-only (and read through a reference in the caller's memory as it was at
/// sm_pool_new). The workers write the very memory the caller reads. Const access to the view
/// does not make the elements const: use shared_view<const T> for that. Valid while the array
/// lives.
template <class T>
class shared_view {
public:
    shared_view(T *data, std::size_t n) noexcept : data_(data), size_(n) {}

    std::size_t size() const noexcept { return size_; }
    T *data() const noexcept { return data_; }
    T &operator[](std::size_t i) const noexcept { return data_[i]; }
    T *begin() const noexcept { return data_; }
    T *end() const noexcept { return data_ + size_; }

private:
    T *data_;
    std::size_t size_;
};

/// n zero-filled elements of shared memory (sm_empty), seen by the caller and by the workers of
/// every later map, released by the destructor (sm_free). Move-only. Allocate outside jobs.
template <class T>
class shared_array {
    static_assert(std::is_trivially_copyable<T>::value,
                  "sharedmem: shared_array<T> needs a trivially copyable T (its memory is shared "
                  "between processes as bytes, zero-filled)");

public:
    /// Throws sharedmem::error on failure, with the library's status and message (SM_ERR_STATE
    /// inside a job, SM_ERR_INVALID on size overflow, SM_ERR_NOMEM when memory is exhausted).
    explicit shared_array(std::size_t n) : data_(static_cast<T *>(sm_empty(n, sizeof(T)))), size_(n) {
        if (!data_) throw error(sm_last_status());
    }
    ~shared_array() { sm_free(data_); }

    shared_array(shared_array &&other) noexcept : data_(other.data_), size_(other.size_) {
        other.data_ = nullptr;
        other.size_ = 0;
    }
    shared_array &operator=(shared_array &&other) noexcept {
        if (this != &other) {
            sm_free(data_);
            data_ = other.data_;
            size_ = other.size_;
            other.data_ = nullptr;
            other.size_ = 0;
        }
        return *this;
    }
    shared_array(const shared_array &) = delete;
    shared_array &operator=(const shared_array &) = delete;

    std::size_t size() const noexcept { return size_; }
    T *data() noexcept { return data_; }
    const T *data() const noexcept { return data_; }
    T &operator[](std::size_t i) noexcept { return data_[i]; }
    const T &operator[](std::size_t i) const noexcept { return data_[i]; }
    T *begin() noexcept { return data_; }
    T *end() noexcept { return data_ + size_; }
    const T *begin() const noexcept { return data_; }
    const T *end() const noexcept { return data_ + size_; }
    /// The whole array as a shared_view, to capture by value.
    shared_view<T> view() noexcept { return shared_view<T>(data_, size_); }
    shared_view<const T> view() const noexcept { return shared_view<const T>(data_, size_); }

private:
    T *data_;
    std::size_t size_;
};

/// The sm_dtype of a key type: double, float, and 8/16/32/64-bit signed and unsigned integers
/// (int64_t, int32_t, ..., uint8_t, and whichever of long / long long / char they are).
template <class T, class Enable = void>
struct dtype_of;  // no sm_dtype for this type

template <>
struct dtype_of<double> : std::integral_constant<sm_dtype, SM_DTYPE_F64> {};
template <>
struct dtype_of<float> : std::integral_constant<sm_dtype, SM_DTYPE_F32> {};
template <class T>
struct dtype_of<T, typename std::enable_if<std::is_integral<T>::value && !std::is_same<T, bool>::value>::type>
    : std::integral_constant<
          sm_dtype,
          std::is_signed<T>::value
              ? (sizeof(T) == 8   ? SM_DTYPE_I64
                 : sizeof(T) == 4 ? SM_DTYPE_I32
                 : sizeof(T) == 2 ? SM_DTYPE_I16
                                  : SM_DTYPE_I8)
              : (sizeof(T) == 8   ? SM_DTYPE_U64
                 : sizeof(T) == 4 ? SM_DTYPE_U32
                 : sizeof(T) == 2 ? SM_DTYPE_U16
                                  : SM_DTYPE_U8)> {
    static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8,
                  "sharedmem: argsort keys must be 8, 16, 32 or 64-bit integers");
};

/// The permutation that sorts keys[0..n), exactly numpy.argsort(keys, kind='stable') (NaNs last).
/// Runs on the pool's worker count of threads (nullptr: the default count). Throws
/// sharedmem::error on failure.
template <class T>
std::vector<std::int64_t> argsort(pool *p, const T *keys, std::size_t n) {
    std::vector<std::int64_t> order(n);
    check(sm_argsort(p ? p->get() : nullptr, keys, n, dtype_of<T>::value, order.data()));
    return order;
}

template <class T>
std::vector<std::int64_t> argsort(pool *p, const std::vector<T> &keys) {
    return argsort(p, keys.data(), keys.size());
}

template <class T>
std::vector<std::int64_t> argsort(pool *p, const shared_array<T> &keys) {
    return argsort(p, keys.data(), keys.size());
}

#ifdef SHAREDMEM_MPI_H
namespace detail {
/// Whether T has an sm_dtype (dtype_of<T>): double, float, 8/16/32/64-bit integers but bool.
template <class T>
struct is_sort_key
    : std::integral_constant<bool, std::is_same<T, double>::value || std::is_same<T, float>::value ||
                                       (std::is_integral<T>::value && !std::is_same<T, bool>::value &&
                                        (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 ||
                                         sizeof(T) == 8))> {};
}  // namespace detail

/// numpy's stable argsort of an array spread over the ranks of comm (sm_mpi_argsort): the
/// concatenation of every rank's keys[0..n) in rank order, n differing between ranks (0 too).
/// Collective. Writes to out[0..n) this rank's share of the sorted order as 0-based global
/// indices; runs on the pool's worker count of threads (nullptr: the default count). Every rank
/// must pass the same T. Throws sharedmem::error on failure, the same status on every rank
/// (SM_ERR_INVALID when the ranks' key types differ).
template <class T>
void mpi_argsort(pool *p, MPI_Comm comm, const T *keys, std::size_t n, std::int64_t *out) {
    static_assert(detail::is_sort_key<T>::value,
                  "sharedmem: mpi_argsort keys must be double, float, or 8, 16, 32 or 64-bit integers");
    check(sm_mpi_argsort(p ? p->get() : nullptr, comm, keys, n, dtype_of<T>::value, out));
}

/// mpi_argsort of a vector: this rank's share of the sorted order (keys.size() global indices).
template <class T>
std::vector<std::int64_t> mpi_argsort(pool *p, MPI_Comm comm, const std::vector<T> &keys) {
    std::vector<std::int64_t> order(keys.size());
    mpi_argsort(p, comm, keys.data(), keys.size(), order.data());
    return order;
}

/// Gathers items by global index across the ranks of comm (sm_mpi_permute): dst[i] is item
/// index[i] of the concatenation of every rank's src[0..n), for i in [0, nout). Collective; with
/// mpi_argsort's output as index it moves a payload held like the keys into the sorted order.
/// dst may be src (nout == n: in place). T is copied as bytes; every rank must pass the same
/// sizeof(T). Throws sharedmem::error on failure, the same status on every rank (SM_ERR_INVALID
/// for an index outside [0, total items) on any rank).
template <class T>
void mpi_permute(pool *p, MPI_Comm comm, const T *src, std::size_t n, const std::int64_t *index,
                 std::size_t nout, T *dst) {
    static_assert(std::is_trivially_copyable<T>::value,
                  "sharedmem: mpi_permute moves items as bytes: T must be trivially copyable");
    check(sm_mpi_permute(p ? p->get() : nullptr, comm, src, n, sizeof(T), index, nout, dst));
}

/// mpi_permute of vectors: a new vector of index.size() items, item i being item index[i] of the
/// concatenation of every rank's src.
template <class T>
std::vector<T> mpi_permute(pool *p, MPI_Comm comm, const std::vector<T> &src,
                           const std::vector<std::int64_t> &index) {
    static_assert(!std::is_same<T, bool>::value,
                  "sharedmem: std::vector<bool> has no contiguous items: use the pointer overload");
    std::vector<T> dst(index.size());
    mpi_permute(p, comm, src.data(), src.size(), index.data(), index.size(), dst.data());
    return dst;
}
#endif  // SHAREDMEM_MPI_H

}  // namespace sharedmem

#endif  // SHAREDMEM_HPP
