// mpi_map.cpp -- the C++ wrapper across MPI ranks: pool.mpi_map with lambdas.
//
// Every rank builds a pool; the map's 100000 jobs are shared out across the ranks, each rank
// running its jobs on its own workers; rank 0 reduces the results in job order. The same lambdas
// run on one machine with pool.map<double>(njobs, work, reduce).
//
// Include <sharedmem_mpi.h> before <sharedmem.hpp>: that is what gives the pool its mpi_map.
//
//   mpirun -n 4 --bind-to none ./mpi_map [process|persistent|thread|serial]
#include <sharedmem_mpi.h>
#include <sharedmem.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

int main(int argc, char **argv) {
    int provided = 0, rank = 0, nranks = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);  // FUNNELED: sm_mpi_map's need
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    sm_backend backend = SM_BACKEND_PROCESS;
    if (argc > 1 && std::strcmp(argv[1], "persistent") == 0) backend = SM_BACKEND_PERSISTENT;
    if (argc > 1 && std::strcmp(argv[1], "thread") == 0) backend = SM_BACKEND_THREAD;
    if (argc > 1 && std::strcmp(argv[1], "serial") == 0) backend = SM_BACKEND_SERIAL;

    const std::size_t njobs = 100000;
    double sum = 0;             // on rank 0 only
    std::size_t next = 0;       // the job reduce expects next
    bool in_order = true;
    int status = 0;
    try {
        sharedmem::pool pool(2, backend);   // this rank's workers
        pool.mpi_map<double>(
            MPI_COMM_WORLD, 0, njobs,
            [](std::size_t job, double &result) {                // on some rank's worker
                result = 1.0 / ((double(job) + 1) * (double(job) + 1));
            },
            [&](std::size_t job, double &result) {               // on rank 0, in job order
                in_order = in_order && job == next++;
                sum += result;
            });
    } catch (const sharedmem::error &e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        status = 1;
    }
    if (rank == 0 && status == 0) {
        // sum 1/k^2 for k = 1..njobs = pi^2/6 - (about 1/njobs)
        double expected = M_PI * M_PI / 6 - 1.0 / double(njobs);
        std::printf("%d ranks: sum = %.9f (pi^2/6 - 1/n = %.9f), reduce in order: %s\n", nranks,
                    sum, expected, in_order ? "yes" : "no");
        if (!in_order || next != njobs || std::fabs(sum - expected) > 1e-9) status = 1;
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
