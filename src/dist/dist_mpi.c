/* dist_mpi.c - dist.h on MPI (built with -DSN_MPI).  MPI_THREAD_FUNNELED: only the main thread
 * calls MPI (OpenMP threads and the loader's workers never do).  Errors return to us
 * (MPI_ERRORS_RETURN) so the message names the rank and the call before the job is aborted. */
#ifdef SN_MPI
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"
#include "dist/dist.h"

static int g_rank = 0, g_size = 1;
static bool g_on = false;
static MPI_Request g_req[DIST_MAX_REQ];
static bool g_used[DIST_MAX_REQ];

void dist_abort(int code, const char *msg) {
    fprintf(stderr, "stylenet: rank %d: %s\n", g_rank, msg);
    fflush(stderr);
    if (g_on) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* a failed MPI call ends the job, naming the rank and the call */
static void ok(int rc, const char *call) {
    if (rc == MPI_SUCCESS) return;
    char reason[MPI_MAX_ERROR_STRING], msg[MPI_MAX_ERROR_STRING + 64];
    int len = 0;
    if (MPI_Error_string(rc, reason, &len) != MPI_SUCCESS) snprintf(reason, sizeof reason, "error %d", rc);
    snprintf(msg, sizeof msg, "%s failed: %s", call, reason);
    dist_abort(1, msg);
}

int dist_init(int *argc, char ***argv) {
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return sn_error("MPI_Init failed");
    g_on = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    ok(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank), "MPI_Comm_rank");
    ok(MPI_Comm_size(MPI_COMM_WORLD, &g_size), "MPI_Comm_size");
    return 0;
}

void dist_finalize(void) {
    if (!g_on) return;
    MPI_Finalize();
    g_on = false;
}

bool dist_active(void) { return g_size > 1; }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
bool dist_built(void) { return true; }

/* MPI counts are int: long buffers go in pieces of at most 1 << 30 */
enum { PIECE = 1 << 30 };

void dist_allreduce_sum_f(float *buf, size_t n) {
    if (g_size == 1) return;
    for (size_t o = 0; o < n; o += PIECE)
        ok(MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)(n - o < PIECE ? n - o : PIECE), MPI_FLOAT, MPI_SUM,
                         MPI_COMM_WORLD), "MPI_Allreduce");
}

void dist_allreduce_sum_d(double *buf, size_t n) {
    if (g_size == 1) return;
    for (size_t o = 0; o < n; o += PIECE)
        ok(MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)(n - o < PIECE ? n - o : PIECE), MPI_DOUBLE, MPI_SUM,
                         MPI_COMM_WORLD), "MPI_Allreduce");
}

void dist_bcast(void *buf, size_t bytes, int root) {
    if (g_size == 1) return;
    for (size_t o = 0; o < bytes; o += PIECE)
        ok(MPI_Bcast((char *)buf + o, (int)(bytes - o < PIECE ? bytes - o : PIECE), MPI_BYTE, root, MPI_COMM_WORLD),
           "MPI_Bcast");
}

void dist_barrier(void) {
    if (g_size > 1) ok(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

int dist_max_i(int x) {
    if (g_size > 1) ok(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return x;
}

dist_req dist_iallreduce_sum_f(float *buf, size_t n) {
    if (g_size == 1) return -1;
    if (n > PIECE) dist_abort(1, "MPI_Iallreduce: a bucket of more than 2^30 floats");
    int k = 0;
    while (k < DIST_MAX_REQ && g_used[k]) k++;
    if (k == DIST_MAX_REQ) dist_abort(1, "MPI_Iallreduce: too many requests in flight");
    ok(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &g_req[k]), "MPI_Iallreduce");
    g_used[k] = true;
    return k;
}

bool dist_test(dist_req r) {
    if (r < 0 || !g_used[r]) return true;
    int done = 0;
    ok(MPI_Test(&g_req[r], &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) g_used[r] = false;
    return done;
}

void dist_wait(dist_req r) {
    if (r < 0 || !g_used[r]) return;
    ok(MPI_Wait(&g_req[r], MPI_STATUS_IGNORE), "MPI_Wait");
    g_used[r] = false;
}
#endif
