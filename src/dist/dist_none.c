/* dist_none.c - dist.h without MPI: one process, rank 0 of 1; the collectives leave buffers as
 * they are.  A process that a launcher started as one of several ranks is refused. */
#ifndef SN_MPI
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"
#include "dist/dist.h"

int dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        return sn_error("started by mpirun as one of %s ranks, but this stylenet was built without MPI "
                        "(install libopenmpi-dev and rebuild)", n);
    return 0;
}
void dist_finalize(void) {}
bool dist_active(void) { return false; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
bool dist_built(void) { return false; }
void dist_allreduce_sum_f(float *buf, size_t n) { (void)buf; (void)n; }
void dist_allreduce_sum_d(double *buf, size_t n) { (void)buf; (void)n; }
void dist_bcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; }
void dist_barrier(void) {}
int dist_max_i(int x) { return x; }
void dist_abort(int code, const char *msg) {
    fprintf(stderr, "stylenet: %s\n", msg);
    exit(code);
}
dist_req dist_iallreduce_sum_f(float *buf, size_t n) {
    (void)buf;
    (void)n;
    return 0;
}
bool dist_test(dist_req r) {
    (void)r;
    return true;
}
void dist_wait(dist_req r) { (void)r; }
#endif
