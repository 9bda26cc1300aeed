// sharedmem.hpp used from C++11 (this file is compiled with -std=c++11 -Wall -Wextra -Werror
// -pedantic): instantiates every template of the wrapper and runs it briefly. Returns the number
// of failed checks; main.cpp (C++17) calls it.
#include <sharedmem.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#if __cplusplus != 201103L
#error "cxx11_checks.cpp must be compiled as C++11"
#endif

namespace {

struct pair_result {
    long job;
    float half;
};

struct adder {  // a function object rather than a lambda
    long *sum;
    bool operator()(std::size_t, const pair_result &r) const {
        *sum += r.job;
        return false;
    }
};

int fails = 0;

bool forked(sm_backend b) {  // false in debug mode (SM_DEBUG=1): every map is serial
    const char *debug = std::getenv("SM_DEBUG");
    return (b == SM_BACKEND_PROCESS || b == SM_BACKEND_PERSISTENT) &&
           !(debug && *debug && std::strcmp(debug, "0") != 0);
}

void expect(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "cxx11_checks: %s\n", what);
        ++fails;
    }
}

}  // namespace

int run_cxx11_checks() {
    const sm_backend backends[] = {SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL,
                                   SM_BACKEND_PERSISTENT};
    for (std::size_t b = 0; b < 4; ++b) {
        sharedmem::pool pool(2, backends[b]);
        long sum = 0;
        adder add = {&sum};
        sharedmem::outcome o = pool.map<pair_result>(
            100,
            [](std::size_t job, pair_result &r) {
                r.job = static_cast<long>(job);
                r.half = static_cast<float>(job) / 2;
            },
            add);
        expect(o == sharedmem::outcome::completed && sum == 4950, "typed map with a functor reduce");

        // Captured by value (a persistent pool copies the callable): a view and a pool_ref.
        sharedmem::shared_array<int> hits_array(64);
        sharedmem::shared_view<int> hits = hits_array.view();
        sharedmem::pool_ref team = pool;
        o = pool.map(hits.size(), [=](std::size_t job) -> int {
            sharedmem::critical_section lock(team);
            hits[0] += 1;
            hits[job] += job == 0 ? 0 : 1;
            return job == 40 ? sharedmem::stop : 0;
        });
        // jobs after 40 may have started before it stopped the map; every job up to 40 ran once
        bool once = true;
        for (std::size_t j = 1; j <= 40; ++j) once = once && hits[j] == 1;
        expect(o == sharedmem::outcome::stopped && once && hits[0] >= 41 && hits[0] <= 64,
               "critical + stop");

        bool caught = false;
        try {
            pool.map(8, [](std::size_t job) {
                if (job == 5) throw std::logic_error("five");
            });
        } catch (const std::logic_error &) {
            caught = !forked(backends[b]);
        } catch (const sharedmem::error &e) {
            caught = forked(backends[b]) && e.status() == SM_ERR_JOB;
        }
        expect(caught, "exception from a job");

        // A parallel region: a work-shared loop, a barrier, a single block.
        sharedmem::shared_array<long> squares_array(50), total_array(1);
        sharedmem::shared_view<long> squares = squares_array.view(), total = total_array.view();
        o = pool.parallel([=] {
            sharedmem::for_loop(team, 0, squares.size(), [&](std::size_t i) {
                squares[i] = static_cast<long>(i * i);
            });
            if (sharedmem::single(team))
                for (std::size_t i = 0; i < squares.size(); ++i) total[0] += squares[i];
            sharedmem::barrier(team);
            return sharedmem::master() ? 0 : 0;
        });
        expect(o == sharedmem::outcome::completed && total[0] == 40425, "parallel region");
    }

    std::vector<short> keys;
    keys.push_back(3);
    keys.push_back(-2);
    keys.push_back(3);
    keys.push_back(0);
    std::vector<std::int64_t> order = sharedmem::argsort<short>(nullptr, keys);
    expect(order.size() == 4 && order[0] == 1 && order[1] == 3 && order[2] == 0 && order[3] == 2,
           "argsort of short");
    try {
        sharedmem::check(SM_ERR_IO);
        expect(false, "check(SM_ERR_IO) did not throw");
    } catch (const sharedmem::error &e) {
        expect(e.status() == SM_ERR_IO, "check(SM_ERR_IO) status");
    }
    sharedmem::check(SM_OK);
    return fails;
}
