/* dist.c - what the MPI and the single-process builds of dist.h share. */
#include "dist/dist.h"

void dist_share(int n_all, int *lo, int *n) {
    const long r = dist_rank(), N = dist_size();
    const int a = (int)(n_all * r / N), b = (int)(n_all * (r + 1) / N);
    *lo = a;
    *n = b - a;
}
