/* act.c - the fused activations' passes (act.h): apply, mask, and the masked backward that sums
 * a convolution's bias gradient in the same pass. */
#include "kernels/act.h"
#include "core/error.h"
#include <omp.h>

/* elements per block when act_apply / act_mask run threaded */
#define ACT_BLOCK 16384L

/* y[0..n) = act(y), serial */
static void apply_span(sn_act act, long n, float *y) {
    if (act == ACT_RELU) {
#pragma omp simd
        for (long k = 0; k < n; k++) y[k] = act_value(ACT_RELU, y[k]);
    } else if (act == ACT_RELU6) {
#pragma omp simd
        for (long k = 0; k < n; k++) y[k] = act_value(ACT_RELU6, y[k]);
    }
}

/* g[0..n) = 0 where act does not pass at y, serial */
static void mask_span(long n, sn_act act, const float *y, float *g) {
    if (act == ACT_RELU) {
#pragma omp simd
        for (long k = 0; k < n; k++) g[k] = act_passes(ACT_RELU, y[k]) ? g[k] : 0.0f;
    } else if (act == ACT_RELU6) {
#pragma omp simd
        for (long k = 0; k < n; k++) g[k] = act_passes(ACT_RELU6, y[k]) ? g[k] : 0.0f;
    }
}

static int threaded(long n) { return n > ACT_PAR_MIN && !omp_in_parallel(); }

void act_apply(sn_act act, long n, float *y) {
    if (act == ACT_NONE || n <= 0) return;
    if (!threaded(n)) {
        apply_span(act, n, y);
        return;
    }
    long nb = (n + ACT_BLOCK - 1) / ACT_BLOCK;
#pragma omp parallel for schedule(static)
    for (long b = 0; b < nb; b++) apply_span(act, b + 1 < nb ? ACT_BLOCK : n - b * ACT_BLOCK, y + b * ACT_BLOCK);
}

void act_mask(long n, sn_act act, const float *y, float *g) {
    if (act == ACT_NONE || n <= 0) return;
    if (!threaded(n)) {
        mask_span(n, act, y, g);
        return;
    }
    long nb = (n + ACT_BLOCK - 1) / ACT_BLOCK;
#pragma omp parallel for schedule(static)
    for (long b = 0; b < nb; b++)
        mask_span(b + 1 < nb ? ACT_BLOCK : n - b * ACT_BLOCK, act, y + b * ACT_BLOCK, g + b * ACT_BLOCK);
}

/* rows [r0, r1) of g[rows, c] masked at y */
static void mask_rows(long r0, long r1, int c, sn_act act, const float *y, float *g) {
    mask_span((r1 - r0) * c, act, y + r0 * c, g + r0 * c);
}

/* db[c] += column sums of g[rows, c]: per-thread double partials over a static row split,
 * summed in thread order (deterministic for a thread count).  With act, g is first masked in
 * place at y, row block by row block, while the block is in cache. */
static void colsum_masked(long rows, int c, sn_act act, const float *y, float *g, float *db) {
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    double *part = db ? sn_calloc(sizeof(double) * nt * c, "conv bias gradient") : NULL;
    if (!part) { /* no bias gradient wanted, or out of memory for the partials: serial sums */
        if (act) act_mask(rows * c, act, y, g);
        for (int j = 0; j < c && db; j++) {
            double s = 0;
            for (long r = 0; r < rows; r++) s += g[r * c + j];
            db[j] += (float)s;
        }
        return;
    }
    int used = 1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        if (t == 0) used = T;
        double *p = part + (long)t * c;
        long r = rows * t / T, r1 = rows * (t + 1) / T;
        for (; r + 4 <= r1; r += 4) { /* four rows per update of the partials: a quarter of the stores */
            if (act) mask_rows(r, r + 4, c, act, y, g);
            const float *g0 = g + r * c, *g1 = g0 + c, *g2 = g1 + c, *g3 = g2 + c;
            for (int j = 0; j < c; j++) p[j] += ((double)g0[j] + g1[j]) + ((double)g2[j] + g3[j]);
        }
        for (; r < r1; r++) {
            if (act) mask_rows(r, r + 1, c, act, y, g);
            for (int j = 0; j < c; j++) p[j] += g[r * c + j];
        }
    }
    for (int j = 0; j < c; j++) {
        double s = 0;
        for (int t = 0; t < used; t++) s += part[(long)t * c + j];
        db[j] += (float)s;
    }
    sn_free(part);
}

void act_backward(long rows, int c, sn_act act, const float *y, float *g, float *db) {
    colsum_masked(rows, c, act, y, g, db);
}

void act_bias_grad(long rows, int c, const float *g, float *db) {
    colsum_masked(rows, c, ACT_NONE, NULL, (float *)g, db); /* ACT_NONE: g is only read */
}
