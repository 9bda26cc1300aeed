/* The example from README.md, verbatim (tests/readme.rs keeps the two identical). */
#include <sharedmem.h>
#include <stdio.h>

static double *squares;                                  /* shared with the workers */

static int work(void *ctx, size_t job, void *result) {   /* runs in a worker process */
    (void)ctx;
    squares[job] = (double)job * job;                    /* sm_empty memory: the caller sees it */
    *(double *)result = squares[job];                    /* handed to reduce */
    return 0;                                            /* nonzero: error; SM_STOP: stop early */
}

static int reduce(void *ctx, size_t job, void *result) { /* in the caller, in job order */
    (void)job; *(double *)ctx += *(double *)result; return 0;
}

int main(void) {
    sm_pool *pool = sm_pool_new(0, SM_BACKEND_PROCESS);  /* 0: OMP_NUM_THREADS or #CPUs */
    squares = sm_empty(1000, sizeof(double));
    double sum = 0;
    sm_status s = sm_map(pool, 1000, work, reduce, sizeof(double), &sum);
    if (s != SM_OK) fprintf(stderr, "%s: %s\n", sm_status_str(s), sm_last_error());
    printf("sum = %.0f, squares[999] = %.0f\n", sum, squares[999]);
    sm_free(squares); sm_pool_free(pool);
    return s != SM_OK;
}
