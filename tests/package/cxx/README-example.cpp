// The C++ example for README.md, verbatim below this line (built and run by tests/package/cxx).
#include <sharedmem.hpp>
#include <cstdio>

int main() {
    sharedmem::pool pool;                                     // forked workers: OMP_NUM_THREADS or #CPUs
    sharedmem::shared_array<double> squares(1000);            // shared with the workers
    double sum = 0;
    try {
        pool.map<double>(
            1000,
            [&](size_t job, double &result) {                 // runs in a worker process
                squares[job] = double(job) * job;             // shared memory: the caller sees it
                result = squares[job];                        // handed to reduce
            },                                                // throw, or return nonzero: error
            [&](size_t, double &result) { sum += result; });  // in the caller, in job order
    } catch (const sharedmem::error &e) {                     // e.status(), e.what()
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    std::printf("sum = %.0f, squares[999] = %.0f\n", sum, squares[999]);
}
