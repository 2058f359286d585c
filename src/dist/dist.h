/* dist.h - the processes of a data-parallel run: MPI ranks when the program was started by
 * mpirun (and built with Open MPI: -DSN_MPI), else one process.  Nothing else includes mpi.h.
 *
 * Contract
 * - dist_init(&argc, &argv) joins the job when the environment says a launcher started the
 *   process (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE set), else does nothing: a program run
 *   by hand is one process (rank 0 of 1) and never touches MPI.  0, or -1 with an error (MPI
 *   requested but not built in, or MPI_Init failed).  dist_finalize() leaves the job.
 * - Every collective (allreduce, bcast, barrier) must be called by all ranks in the same order;
 *   with one process each is a no-op (sums and broadcasts leave the buffer as it is).
 * - Errors: a failed MPI call prints "stylenet: rank R: <call>: <MPI's reason>" and aborts the
 *   whole job (MPI_Abort); a rank that dies is noticed by mpirun, which ends the others.  So a
 *   job never hangs on a lost rank and the collectives return only on success.
 * - dist_abort(code, msg) prints "stylenet: rank R: msg" to stderr and ends every rank.
 * - Non-blocking sums: dist_iallreduce_sum starts summing n floats in place across ranks and
 *   returns a request; dist_test(r) drives MPI's progress engine (call it while computing, so
 *   the transfer overlaps) and tells whether r is done; dist_wait(r) waits for it.  At most
 *   DIST_MAX_REQ requests are in flight.
 */
#ifndef STYLENET_DIST_H
#define STYLENET_DIST_H
#include <stdbool.h>
#include <stddef.h>

enum { DIST_MAX_REQ = 4096 };
typedef int dist_req; /* an index into the implementation's table of requests */

int dist_init(int *argc, char ***argv);
void dist_finalize(void);
bool dist_active(void);         /* more than one process */
int dist_rank(void);            /* 0 .. dist_size() - 1 */
int dist_size(void);
bool dist_built(void);          /* built with MPI */
/* blocking sums in place of n values across ranks */
void dist_allreduce_sum_f(float *buf, size_t n);
void dist_allreduce_sum_d(double *buf, size_t n);
/* root's `bytes` bytes at buf to every rank */
void dist_bcast(void *buf, size_t bytes, int root);
void dist_barrier(void);
/* the most of x over ranks (e.g. an error flag, so every rank takes the same way) */
int dist_max_i(int x);
void dist_abort(int code, const char *msg) __attribute__((noreturn));
dist_req dist_iallreduce_sum_f(float *buf, size_t n);
bool dist_test(dist_req r);
void dist_wait(dist_req r);
/* the part [*lo, *lo + *n) of n_all items that this rank takes: contiguous, sizes differ by at
 * most one, in rank order (rank 0 the first) */
void dist_share(int n_all, int *lo, int *n);
#endif
