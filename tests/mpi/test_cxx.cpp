// sharedmem.hpp's pool.mpi_map (sharedmem_mpi.h included first), on every backend (persistent
// pools get a copy of work at each call):
// - the results and reduce order of a typed map, reduce on root only;
// - an exception thrown by work on a non-root rank (the only rank with 1): that rank rethrows it
//   as map() does (the very object on thread/serial pools, sharedmem::error SM_ERR_JOB with its
//   what() text from a worker process), every other rank throws sharedmem::error (SM_ERR_JOB)
//   naming the job, the rank and the text;
// - a work returning an error value: sharedmem::error SM_ERR_JOB on every rank;
// - reduce throwing on root: root rethrows it, the others throw sharedmem::error (SM_STOPPED);
// - reduce returning true: outcome::stopped everywhere;
// - a value captured by value, set after the pool was made, reaching every rank's workers.
#include <sharedmem_mpi.h>
#include <sharedmem.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "mpitest.hpp"

struct my_error : std::runtime_error {
    my_error() : std::runtime_error("my error from job") {}
};

// Jobs from 700 on fail on the ranks other than root; on root they are slow, so that the other
// ranks surely get some of them (jobs are handed out dynamically: root could otherwise take them
// all before the others ask).
static bool fails_here(std::size_t job) {
    if (job >= 700 && nranks_ > 1 && rank_ == 0) usleep(1000);
    return job >= 700 && (nranks_ == 1 || rank_ != 0);
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks_);
    alarm(100);
    const sm_backend backends[] = {SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL,
                                   SM_BACKEND_PERSISTENT};
    long long offset = 0;
    for (sm_backend b : backends) {
        sharedmem::pool pool(2, b);
        const std::size_t njobs = 3000;

        // results and order
        std::size_t next = 0;
        long long sum = 0;
        bool in_order = true;
        sharedmem::outcome o = pool.mpi_map<long long>(
            MPI_COMM_WORLD, 0, njobs, [](std::size_t job, long long &r) { r = (long long)job * 3; },
            [&](std::size_t job, long long &r) {
                in_order = in_order && job == next++ && r == (long long)job * 3;
                sum += r;
            });
        CHECK(o == sharedmem::outcome::completed, "backend %d: not completed", (int)b);
        if (rank_ == 0)
            CHECK(in_order && next == njobs && sum == 3LL * njobs * (njobs - 1) / 2,
                  "backend %d: reduce saw %zu jobs, in order: %d", (int)b, next, (int)in_order);
        else
            CHECK(next == 0, "backend %d: reduce ran on rank %d", (int)b, rank_);

        // an exception from work on a non-root rank; the first in job order wins
        try {
            pool.mpi_map(MPI_COMM_WORLD, 0, njobs, [](std::size_t job) {
                if (job % 64 == 0) usleep(100);
                if (fails_here(job)) throw my_error();
            });
            CHECK(false, "backend %d: a job threw and mpi_map did not", (int)b);
        } catch (const my_error &) {
            CHECK(b != SM_BACKEND_PROCESS && b != SM_BACKEND_PERSISTENT && (nranks_ == 1 || rank_ != 0),
                  "backend %d: the job's own exception came out on rank %d", (int)b, rank_);
        } catch (const sharedmem::error &e) {
            CHECK(e.status() == SM_ERR_JOB, "backend %d: status %d: %s", (int)b, (int)e.status(),
                  e.what());
            CHECK(std::strstr(e.what(), "my error from job") != nullptr,
                  "backend %d: the message lacks the exception's text: %s", (int)b, e.what());
        }

        // an error value: the C message, on every rank
        try {
            pool.mpi_map(MPI_COMM_WORLD, 0, njobs, [](std::size_t job) { return fails_here(job) ? 5 : 0; });
            CHECK(false, "backend %d: a job failed and mpi_map did not throw", (int)b);
        } catch (const sharedmem::error &e) {
            CHECK(e.status() == SM_ERR_JOB, "backend %d: status %d: %s", (int)b, (int)e.status(),
                  e.what());
        }

        // reduce throws on root
        try {
            pool.mpi_map<int>(MPI_COMM_WORLD, 0, njobs, [](std::size_t, int &r) { r = 1; },
                              [](std::size_t job, int &) {
                                  if (job == 100) throw std::logic_error("reduce gave up");
                              });
            CHECK(false, "backend %d: reduce threw and mpi_map did not", (int)b);
        } catch (const std::logic_error &) {
            CHECK(rank_ == 0, "backend %d: reduce's exception on rank %d", (int)b, rank_);
        } catch (const sharedmem::error &e) {
            CHECK(rank_ != 0 && e.status() == SM_STOPPED, "backend %d: rank %d: %s", (int)b,
                  rank_, e.what());
        }

        // reduce asks to stop
        o = pool.mpi_map<int>(MPI_COMM_WORLD, 0, njobs, [](std::size_t, int &r) { r = 1; },
                              [](std::size_t job, int &) { return job == 10; });
        CHECK(o == sharedmem::outcome::stopped, "backend %d: not stopped", (int)b);

        // a stack value set after the pool, captured by value: every job sees it, on every rank
        offset = 1000 + (long long)b;
        sum = 0;
        o = pool.mpi_map<long long>(
            MPI_COMM_WORLD, 0, njobs, [=](std::size_t job, long long &r) { r = offset + (long long)job; },
            [&](std::size_t, long long &r) { sum += r; });
        CHECK(o == sharedmem::outcome::completed, "backend %d: not completed", (int)b);
        if (rank_ == 0)
            CHECK(sum == offset * (long long)njobs + (long long)(njobs * (njobs - 1) / 2), "backend %d: sum %lld",
                  (int)b, sum);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ == 0) std::printf("test_cxx: OK on %d rank(s)\n", nranks_);
    MPI_Finalize();
    return 0;
}
