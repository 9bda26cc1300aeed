// What the C++ MPI tests share (test_cxx.cpp, test_cxx_sort.cpp): the rank, and a CHECK that
// prints the rank and ends every rank (a failed check on one rank must not leave the others
// waiting). Include after <sharedmem_mpi.h>.
#ifndef SM_MPI_TEST_HPP
#define SM_MPI_TEST_HPP

#include <cstdio>

static int rank_ = 0, nranks_ = 1;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "[rank %d] %s:%d: CHECK(%s) failed: ", rank_, __FILE__,  \
                         __LINE__, #cond);                                                \
            std::fprintf(stderr, __VA_ARGS__);                                            \
            std::fputc('\n', stderr);                                                     \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                 \
        }                                                                                 \
    } while (0)

#endif
