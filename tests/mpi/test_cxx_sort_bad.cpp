// Must not compile (tests/mpi/CMakeLists.txt checks the compiler's message): sharedmem.hpp's
// mpi_argsort with a key type that has no sm_dtype (SM_BAD_KEY), mpi_permute with an item that is
// not trivially copyable (SM_BAD_ITEM), mpi_permute of a std::vector<bool> (SM_BAD_VECTOR).
#include <sharedmem_mpi.h>
#include <sharedmem.hpp>

#include <string>
#include <vector>

void bad(MPI_Comm comm) {
#if defined(SM_BAD_KEY)
    const long double keys[1] = {0};
    std::int64_t out[1];
    sharedmem::mpi_argsort(nullptr, comm, keys, 1, out);
#elif defined(SM_BAD_ITEM)
    const std::string src[1];
    std::string dst[1];
    const std::int64_t index[1] = {0};
    sharedmem::mpi_permute(nullptr, comm, src, 1, index, 1, dst);
#elif defined(SM_BAD_VECTOR)
    std::vector<bool> src(1);
    std::vector<std::int64_t> index(1, 0);
    sharedmem::mpi_permute(nullptr, comm, src, index);
#else
    (void)comm;  // compiles: the test's control
#endif
}
