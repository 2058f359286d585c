/* batchnorm.c - batch normalisation over x[m, c] (NHWC, m = N*H*W).
 *
 * Per-channel sums are accumulated in double over fixed blocks of rows whose size depends only
 * on m (not on the thread count), and the block partials are added in block order, so results
 * are bitwise independent of the number of threads.  Training statistics take one pass: sums
 * of x and x^2 in double (PyTorch's CPU kernel takes two; in double the difference is ~1e-16
 * relative to mean^2/var, far below float32 resolution).
 */
#include "kernels/batchnorm.h"
#include "core/error.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void (*g_sync)(double *buf, size_t n); /* synchronised batch norm: sums across processes */

void batchnorm_set_sync(void (*reduce)(double *buf, size_t n)) { g_sync = reduce; }
bool batchnorm_sync_on(void) { return g_sync != NULL; }

/* s[0 .. 2c) (two per-channel sums) and the row count m summed across processes into s[2c];
 * returns the whole count.  The sums of every process are needed: without memory for them the
 * processes cannot agree, so that ends the program. */
static double sync_sums(double *s, int c, int m) {
    if (!s) {
        fputs("stylenet: batchnorm: out of memory for synchronised statistics\n", stderr);
        abort();
    }
    s[2 * c] = m;
    g_sync(s, 2 * (size_t)c + 1);
    return s[2 * c];
}

enum { SUM_B_AND_B_DEV_A, SUM_A_AND_SQ };

/* the gradient mask of y = act(x*scale + shift) (bitwise as the forward) */
typedef struct {
    const float *scale, *shift;
    sn_act act; /* ACT_NONE: no mask */
} bn_mask;

static inline float masked(const bn_mask *k, int j, float x, float g) {
    if (!k || !k->act) return g;
    return act_passes(k->act, x * k->scale[j] + k->shift[j]) ? g : 0.0f;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BN_VEC 1

/* one 8-channel chunk of one row: s1 += a, s2 += a^2 (double, two halves each) */
static inline void sq8(const float *a, __m256d s1[2], __m256d s2[2]) {
    __m256 va = _mm256_loadu_ps(a);
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(va)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(va, 1));
    s1[0] = _mm256_add_pd(s1[0], lo);
    s1[1] = _mm256_add_pd(s1[1], hi);
    s2[0] = _mm256_fmadd_pd(lo, lo, s2[0]);
    s2[1] = _mm256_fmadd_pd(hi, hi, s2[1]);
}

/* one 8-channel chunk of one row: s1 += b', s2 += b'*(a - mu) with b' = b masked where act does
 * not pass at a*sc + sh (computed as the forward computes it) */
static inline void dev8(sn_act act, const float *a, const float *b, const __m256d mu[2], __m256 sc, __m256 sh,
                        __m256d s1[2], __m256d s2[2]) {
    __m256 va = _mm256_loadu_ps(a), vb = _mm256_loadu_ps(b);
    if (act != ACT_NONE) {
        __m256 v = _mm256_fmadd_ps(va, sc, sh);
        __m256 pass = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
        if (act == ACT_RELU6) pass = _mm256_and_ps(pass, _mm256_cmp_ps(v, _mm256_set1_ps(6.0f), _CMP_LT_OQ));
        vb = _mm256_and_ps(vb, pass);
    }
    __m256d alo = _mm256_cvtps_pd(_mm256_castps256_ps128(va)), ahi = _mm256_cvtps_pd(_mm256_extractf128_ps(va, 1));
    __m256d blo = _mm256_cvtps_pd(_mm256_castps256_ps128(vb)), bhi = _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1));
    s1[0] = _mm256_add_pd(s1[0], blo);
    s1[1] = _mm256_add_pd(s1[1], bhi);
    s2[0] = _mm256_fmadd_pd(blo, _mm256_sub_pd(alo, mu[0]), s2[0]);
    s2[1] = _mm256_fmadd_pd(bhi, _mm256_sub_pd(ahi, mu[1]), s2[1]);
}

/* rows [r, r + nr) (nr <= 4) of 8-channel chunk j, added to p1/p2; b == NULL: the sums of a and a^2,
 * else of b' and b'*(a - mu) as dev8; with 4 rows, the next group's rows are prefetched (rows of
 * a few hundred bytes defeat the hardware prefetcher) */
static inline __attribute__((always_inline)) void group8(sn_act act, long r, int nr, int j, int c, const float *a,
                                                          const float *b, const double *mu, const float *sc,
                                                          const float *sh, double *p1, double *p2) {
    __m256d s1[2] = {_mm256_loadu_pd(p1 + j), _mm256_loadu_pd(p1 + j + 4)};
    __m256d s2[2] = {_mm256_loadu_pd(p2 + j), _mm256_loadu_pd(p2 + j + 4)};
    const float *ar = a + r * c + j;
    if (nr == 4 && !(j & 15))
        for (int q = 4; q < 8; q++) {
            _mm_prefetch((const char *)(ar + q * c), _MM_HINT_T0);
            if (b) _mm_prefetch((const char *)(b + (r + q) * c + j), _MM_HINT_T0);
        }
    if (!b) {
        for (int q = 0; q < nr; q++) sq8(ar + q * c, s1, s2);
    } else {
        const float *br = b + r * c + j;
        const __m256d m[2] = {_mm256_loadu_pd(mu + j), _mm256_loadu_pd(mu + j + 4)};
        const __m256 vsc = act ? _mm256_loadu_ps(sc + j) : _mm256_setzero_ps();
        const __m256 vsh = act ? _mm256_loadu_ps(sh + j) : _mm256_setzero_ps();
        for (int q = 0; q < nr; q++) dev8(act, ar + q * c, br + q * c, m, vsc, vsh, s1, s2);
    }
    _mm256_storeu_pd(p1 + j, s1[0]);
    _mm256_storeu_pd(p1 + j + 4, s1[1]);
    _mm256_storeu_pd(p2 + j, s2[0]);
    _mm256_storeu_pd(p2 + j + 4, s2[1]);
}

/* rows [r0, r1) for channels [0, c - c % 8) with act fixed (specialised by the caller) */
static inline __attribute__((always_inline)) void rows_vec(sn_act act, long r0, long r1, int c, const float *a,
                                                            const float *b, const double *mu, const float *sc,
                                                            const float *sh, double *p1, double *p2) {
    for (long r = r0; r < r1; r += 4) {
        if (r1 - r >= 4)
            for (int j = 0; j + 8 <= c; j += 8) group8(act, r, 4, j, c, a, b, mu, sc, sh, p1, p2);
        else
            for (int j = 0; j + 8 <= c; j += 8) group8(act, r, (int)(r1 - r), j, c, a, b, mu, sc, sh, p1, p2);
    }
}

/* col_sums_mask's sums of rows [r0, r1) for channels [0, c - c % 8), added to p1/p2: 8-channel
 * chunks of four rows at a time summed in registers */
static void col_sums_rows_vec(int mode, long r0, long r1, int c, const float *a, const float *b, const double *mu,
                              const bn_mask *mk, double *p1, double *p2) {
    const sn_act act = mk ? mk->act : ACT_NONE;
    if (mode == SUM_A_AND_SQ) rows_vec(ACT_NONE, r0, r1, c, a, NULL, NULL, NULL, NULL, p1, p2);
    else if (act == ACT_RELU6) rows_vec(ACT_RELU6, r0, r1, c, a, b, mu, mk->scale, mk->shift, p1, p2);
    else if (act == ACT_RELU) rows_vec(ACT_RELU, r0, r1, c, a, b, mu, mk->scale, mk->shift, p1, p2);
    else rows_vec(ACT_NONE, r0, r1, c, a, b, mu, NULL, NULL, p1, p2);
}
#endif

/* mode SUM_A_AND_SQ: o1 = sum a, o2 = sum a^2;
 * SUM_B_AND_B_DEV_A: o1 = sum b', o2 = sum b'*(a-mu) with b' = b masked by mk (if given).
 * Returns -1 if out of memory. */
static int col_sums_mask(int mode, int m, int c, const float *a, const float *b, const double *mu, const bn_mask *mk,
                         double *o1, double *o2) {
    long br = (m + 255L) / 256;
    if (br < 64) br = 64;
    int nb = (int)((m + br - 1) / br);
    double *p = sn_alloc(sizeof(double) * 2 * (size_t)nb * c, "batchnorm partial sums");
    if (!p) return -1;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nb; k++) {
        double *restrict p1 = p + (size_t)2 * k * c, *restrict p2 = p1 + c;
        float *restrict gm = mk && mk->act ? sn_alloc(sizeof(float) * c, "batchnorm backward row") : NULL;
        memset(p1, 0, sizeof(double) * 2 * c);
        long r1 = (k + 1) * br < m ? (k + 1) * br : m;
        int j0 = 0; /* channels [0, j0) are summed by the vector pass */
#ifdef BN_VEC
        if (mode == SUM_A_AND_SQ || !mk || !mk->act || mk->act == ACT_RELU || mk->act == ACT_RELU6) {
            col_sums_rows_vec(mode, k * br, r1, c, a, b, mu, mk, p1, p2);
            j0 = c - c % 8;
        }
#endif
        for (long r = k * br; r < r1 && j0 < c; r++) {
            const float *restrict ar = a + r * c;
            if (mode == SUM_A_AND_SQ) {
                for (int j = j0; j < c; j++) {
                    double t = ar[j];
                    p1[j] += t;
                    p2[j] += t * t;
                }
            } else if (mk && mk->act && gm) { /* mask the row in float (vectorises), then sum */
                const float *restrict bp = b + r * c, *restrict sc = mk->scale, *restrict sh = mk->shift;
                const sn_act act = mk->act;
                for (int j = j0; j < c; j++) gm[j] = act_passes(act, ar[j] * sc[j] + sh[j]) ? bp[j] : 0.0f;
                for (int j = j0; j < c; j++) {
                    p1[j] += gm[j];
                    p2[j] += (double)gm[j] * ((double)ar[j] - mu[j]);
                }
            } else if (mk && mk->act) { /* out of memory for the row: element by element */
                const float *restrict bp = b + r * c;
                for (int j = j0; j < c; j++) {
                    float g = masked(mk, j, ar[j], bp[j]);
                    p1[j] += g;
                    p2[j] += (double)g * ((double)ar[j] - mu[j]);
                }
            } else {
                const float *restrict bp = b + r * c;
                for (int j = j0; j < c; j++) {
                    p1[j] += bp[j];
                    p2[j] += (double)bp[j] * ((double)ar[j] - mu[j]);
                }
            }
        }
        sn_free(gm);
    }
#pragma omp parallel for schedule(static)
    for (int j = 0; j < c; j++) {
        double s1 = 0, s2 = 0;
        for (int k = 0; k < nb; k++) {
            s1 += p[(size_t)2 * k * c + j];
            s2 += p[(size_t)2 * k * c + c + j];
        }
        o1[j] = s1;
        if (o2) o2[j] = s2;
    }
    sn_free(p);
    return 0;
}

static int col_sums(int mode, int m, int c, const float *a, const float *b, const double *mu, double *o1, double *o2) {
    return col_sums_mask(mode, m, c, a, b, mu, NULL, o1, o2);
}

int batchnorm_sums(int m, int c, const float *x, double *s) {
    if (m <= 0 || c <= 0) return 0;
    /* sums of x and x^2 in double (the variance keeps ~1e-16 * mean^2/var relative error, far
     * below float32's) */
    return col_sums(SUM_A_AND_SQ, m, c, x, NULL, NULL, s, s + c);
}

/* channel j's outputs of the training statistics from its batch mean mu and biased variance v
 * over `rows` rows */
static void channel_stats(int j, double mu, double v, double rows, const float *gamma, const float *beta, float eps,
                          float momentum, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                          float *scale, float *shift) {
    double is = 1.0 / sqrt(v + eps), g = gamma ? gamma[j] : 1.0, bt = beta ? beta[j] : 0.0;
    scale[j] = (float)(g * is);
    shift[j] = (float)(bt - mu * g * is);
    if (save_mean) save_mean[j] = (float)mu;
    if (save_invstd) save_invstd[j] = (float)is;
    if (run_mean) run_mean[j] = (float)((1.0 - momentum) * run_mean[j] + momentum * mu);
    if (run_var) run_var[j] = (float)((1.0 - momentum) * run_var[j] + momentum * (rows > 1 ? v * rows / (rows - 1) : v));
}

void batchnorm_train_stats_from_sums(double rows, int c, const double *s, const float *gamma, const float *beta,
                                     float eps, float momentum, float *run_mean, float *run_var, float *save_mean,
                                     float *save_invstd, float *scale, float *shift) {
    for (int j = 0; j < c; j++) {
        double mu = s[j] / rows, v = s[c + j] / rows - mu * mu;
        if (v < 0) v = 0;
        channel_stats(j, mu, v, rows, gamma, beta, eps, momentum, run_mean, run_var, save_mean, save_invstd, scale, shift);
    }
}

void batchnorm_train_stats(int m, int c, const float *x, const float *gamma, const float *beta, float eps,
                           float momentum, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                           float *scale, float *shift) {
    if (m <= 0 || c <= 0) return;
    double *sums = sn_alloc(sizeof(double) * (2 * c + 1), "batchnorm statistics");
    int ok = sums && !batchnorm_sums(m, c, x, sums);
    const double rows = g_sync ? sync_sums(ok ? sums : NULL, c, m) : m; /* rows of the whole batch */
    if (ok) {
        batchnorm_train_stats_from_sums(rows, c, sums, gamma, beta, eps, momentum, run_mean, run_var, save_mean,
                                        save_invstd, scale, shift);
        sn_free(sums);
        return;
    }
    for (int j = 0; j < c; j++) { /* out of memory: serial double loops, same results up to summation order */
        double mu = 0, v = 0;
        for (long r = 0; r < m; r++) mu += x[r * c + j];
        mu /= m;
        for (long r = 0; r < m; r++) v += ((double)x[r * c + j] - mu) * ((double)x[r * c + j] - mu);
        v /= m;
        channel_stats(j, mu, v, rows, gamma, beta, eps, momentum, run_mean, run_var, save_mean, save_invstd, scale, shift);
    }
    if (sums) sn_free(sums);
}

void batchnorm_eval_scale_shift(int c, const float *gamma, const float *beta, const float *run_mean,
                                const float *run_var, float eps, float *scale, float *shift) {
    for (int j = 0; j < c; j++) {
        double is = 1.0 / sqrt((double)run_var[j] + eps), g = gamma ? gamma[j] : 1.0;
        scale[j] = (float)(g * is);
        shift[j] = (float)((beta ? beta[j] : 0.0) - run_mean[j] * g * is);
    }
}

void batchnorm_apply(int m, int c, const float *x, const float *scale, const float *shift, const float *z, sn_act act,
                     float *y) {
#pragma omp parallel for schedule(static) if ((long)m * c > 32768)
    for (long r = 0; r < m; r++) {
        const float *xr = x + r * c, *zr = z ? z + r * c : NULL;
        float *yr = y + r * c;
        if (zr && act == ACT_RELU)
#pragma omp simd
            for (int j = 0; j < c; j++) yr[j] = act_value(ACT_RELU, (xr[j] * scale[j] + shift[j]) + zr[j]);
        else if (zr)
#pragma omp simd
            for (int j = 0; j < c; j++) yr[j] = (xr[j] * scale[j] + shift[j]) + zr[j];
        else if (act == ACT_RELU)
#pragma omp simd
            for (int j = 0; j < c; j++) yr[j] = act_value(ACT_RELU, xr[j] * scale[j] + shift[j]);
        else if (act == ACT_RELU6)
#pragma omp simd
            for (int j = 0; j < c; j++) yr[j] = act_value(ACT_RELU6, xr[j] * scale[j] + shift[j]);
        else
#pragma omp simd
            for (int j = 0; j < c; j++) yr[j] = xr[j] * scale[j] + shift[j];
    }
}

void batchnorm_forward_train(int m, int c, const float *x, const float *gamma, const float *beta,
                             float eps, float momentum, float *run_mean, float *run_var,
                             float *save_mean, float *save_invstd, float *y) {
    if (m <= 0 || c <= 0) return;
    float *ss = sn_alloc(sizeof(float) * 2 * c, "batchnorm scale");
    if (!ss) { /* out of memory: per channel, two floats at a time */
        for (int j = 0; j < c; j++) {
            double s = 0, q = 0;
            for (long r = 0; r < m; r++) s += x[r * c + j];
            s /= m;
            for (long r = 0; r < m; r++) q += ((double)x[r * c + j] - s) * ((double)x[r * c + j] - s);
            q /= m;
            double is = 1.0 / sqrt(q + eps), g = gamma ? gamma[j] : 1.0, bt = beta ? beta[j] : 0.0;
            if (save_mean) save_mean[j] = (float)s;
            if (save_invstd) save_invstd[j] = (float)is;
            if (run_mean) run_mean[j] = (float)((1.0 - momentum) * run_mean[j] + momentum * s);
            if (run_var) run_var[j] = (float)((1.0 - momentum) * run_var[j] + momentum * (m > 1 ? q * m / (m - 1) : q));
            for (long r = 0; r < m; r++) y[r * c + j] = (float)(((double)x[r * c + j] - s) * is * g + bt);
        }
        return;
    }
    batchnorm_train_stats(m, c, x, gamma, beta, eps, momentum, run_mean, run_var, save_mean, save_invstd, ss, ss + c);
    batchnorm_apply(m, c, x, ss, ss + c, NULL, ACT_NONE, y);
    sn_free(ss);
}

void batchnorm_forward_eval(int m, int c, const float *x, const float *gamma, const float *beta,
                            const float *run_mean, const float *run_var, float eps, float *y) {
    if (m <= 0 || c <= 0) return;
    float *ss = sn_alloc(sizeof(float) * 2 * c, "batchnorm scale");
    if (!ss) {
        for (long r = 0; r < m; r++)
            for (int j = 0; j < c; j++) {
                double is = 1.0 / sqrt((double)run_var[j] + eps);
                y[r * c + j] = (float)(((double)x[r * c + j] - run_mean[j]) * is * (gamma ? gamma[j] : 1.0) +
                                       (beta ? beta[j] : 0.0));
            }
        return;
    }
    batchnorm_eval_scale_shift(c, gamma, beta, run_mean, run_var, eps, ss, ss + c);
    batchnorm_apply(m, c, x, ss, ss + c, NULL, ACT_NONE, y);
    sn_free(ss);
}

/* shared by train and eval backward:
 *   train: dx += g*is * (dy - sum_dy/m - xhat * sum_dy_xhat/m)  (centered)
 *   eval:  dx += g*is * dy
 *   dgamma += sum dy * xhat,  dbeta += sum dy,  xhat = (x - mu) * is */
static void bn_backward(int train, int m, int c, const float *x, const float *dy, const float *gamma,
                        const double *mu, const double *is, float *dx, float *dgamma, float *dbeta) {
    double *sdy = sn_alloc(sizeof(double) * (2 * c + 1), "batchnorm backward sums"), *sdyx = sdy ? sdy + c : NULL;
    float *k = sn_alloc(sizeof(float) * 4 * c, "batchnorm backward coefficients");
    const bool sync = train && g_sync;
    if (!sdy || !k || col_sums(SUM_B_AND_B_DEV_A, m, c, x, dy, mu, sdy, sdyx)) {
        if (sync) sync_sums(NULL, c, m);
        /* out of memory: serial, same formulas */
        for (int j = 0; j < c; j++) {
            double s1 = 0, s2 = 0;
            for (long r = 0; r < m; r++) {
                s1 += dy[r * c + j];
                s2 += (double)dy[r * c + j] * ((double)x[r * c + j] - mu[j]);
            }
            double g = gamma ? gamma[j] : 1.0, a = g * is[j];
            if (dgamma) dgamma[j] += (float)(s2 * is[j]);
            if (dbeta) dbeta[j] += (float)s1;
            if (dx)
                for (long r = 0; r < m; r++) {
                    double v = dy[r * c + j];
                    if (train) v -= s1 / m + ((double)x[r * c + j] - mu[j]) * is[j] * is[j] * s2 / m;
                    dx[r * c + j] += (float)(a * v);
                }
        }
        if (sdy) sn_free(sdy);
        if (k) sn_free(k);
        return;
    }
    /* dx += A*dy + B*(x - mu) + C with A = g*is, B = -g*is^3*sdyx/m, C = -g*is*sdy/m (train) */
    for (int j = 0; j < c; j++) {
        if (dgamma) dgamma[j] += (float)(sdyx[j] * is[j]);
        if (dbeta) dbeta[j] += (float)sdy[j];
    }
    const double rows = sync ? sync_sums(sdy, c, m) : m; /* the whole batch's sums from here */
    for (int j = 0; j < c; j++) {
        double g = gamma ? gamma[j] : 1.0, a = g * is[j];
        k[j] = (float)a;
        k[c + j] = (float)(train ? -a * is[j] * is[j] * sdyx[j] / rows : 0.0);
        k[2 * c + j] = (float)(train ? -a * sdy[j] / rows : 0.0);
        k[3 * c + j] = (float)mu[j];
    }
    if (dx) {
        const float *A = k, *B = k + c, *C = k + 2 * c, *M = k + 3 * c;
#pragma omp parallel for schedule(static)
        for (long r = 0; r < m; r++) {
            const float *restrict xr = x + r * c, *restrict g = dy + r * c;
            float *restrict d = dx + r * c;
            for (int j = 0; j < c; j++) d[j] += A[j] * g[j] + (B[j] * (xr[j] - M[j]) + C[j]);
        }
    }
    sn_free(k);
    sn_free(sdy);
}

void batchnorm_backward_train(int m, int c, const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd,
                              float *dx, float *dgamma, float *dbeta) {
    if (m <= 0 || c <= 0) return;
    double *mu = sn_alloc(sizeof(double) * 2 * c, "batchnorm backward");
    if (!mu) return; /* cannot happen in practice: 16 bytes per channel */
    for (int j = 0; j < c; j++) {
        mu[j] = save_mean[j];
        mu[c + j] = save_invstd[j];
    }
    bn_backward(1, m, c, x, dy, gamma, mu, mu + c, dx, dgamma, dbeta);
    sn_free(mu);
}

void batchnorm_backward_eval(int m, int c, const float *x, const float *dy, const float *gamma,
                             const float *run_mean, const float *run_var, float eps,
                             float *dx, float *dgamma, float *dbeta) {
    if (m <= 0 || c <= 0) return;
    double *mu = sn_alloc(sizeof(double) * 2 * c, "batchnorm backward");
    if (!mu) return;
    for (int j = 0; j < c; j++) {
        mu[j] = run_mean[j];
        mu[c + j] = 1.0 / sqrt((double)run_var[j] + eps);
    }
    bn_backward(0, m, c, x, dy, gamma, mu, mu + c, dx, dgamma, dbeta);
    sn_free(mu);
}

void batchnorm_act_backward(int train, int m, int c, const float *x, const float *scale, const float *shift, sn_act act,
                            const float *gamma, const float *mean, const float *var_or_invstd, float eps, float *g,
                            float *dgamma, float *dbeta) {
    if (m <= 0 || c <= 0) return;
    const bn_mask mk = {scale, shift, act}; /* the activation's gradient mask, recomputed */
    double *mu = sn_alloc(sizeof(double) * (4 * c + 1), "batchnorm backward");
    float *k = sn_alloc(sizeof(float) * 4 * c, "batchnorm backward coefficients");
    const bool sync = train && g_sync;
    if (sync && (!mu || !k)) sync_sums(NULL, c, m);
    if (!mu || !k) { /* out of memory: serial, per channel */
        for (int j = 0; j < c; j++) {
            double u = mean[j], is = train ? var_or_invstd[j] : 1.0 / sqrt((double)var_or_invstd[j] + eps);
            double s1 = 0, s2 = 0;
            for (long r = 0; r < m; r++) {
                g[r * c + j] = masked(&mk, j, x[r * c + j], g[r * c + j]);
                s1 += g[r * c + j];
                s2 += (double)g[r * c + j] * ((double)x[r * c + j] - u);
            }
            double a = (gamma ? gamma[j] : 1.0) * is;
            if (dgamma) dgamma[j] += (float)(s2 * is);
            if (dbeta) dbeta[j] += (float)s1;
            for (long r = 0; r < m; r++) {
                double v = g[r * c + j];
                if (train) v -= s1 / m + ((double)x[r * c + j] - u) * is * is * s2 / m;
                g[r * c + j] = (float)(a * v);
            }
        }
        if (mu) sn_free(mu);
        if (k) sn_free(k);
        return;
    }
    double *is = mu + c, *sdy = mu + 2 * c, *sdyx = mu + 3 * c;
    for (int j = 0; j < c; j++) {
        mu[j] = mean[j];
        is[j] = train ? var_or_invstd[j] : 1.0 / sqrt((double)var_or_invstd[j] + eps);
    }
    if (col_sums_mask(SUM_B_AND_B_DEV_A, m, c, x, g, mu, &mk, sdy, sdyx)) {
        if (sync) sync_sums(NULL, c, m);
        sn_free(mu);
        sn_free(k);
        return;
    }
    for (int j = 0; j < c; j++) {
        if (dgamma) dgamma[j] += (float)(sdyx[j] * is[j]);
        if (dbeta) dbeta[j] += (float)sdy[j];
    }
    const double rows = sync ? sync_sums(sdy, c, m) : m; /* the whole batch's sums from here */
    for (int j = 0; j < c; j++) {
        double a = (gamma ? gamma[j] : 1.0) * is[j];
        k[j] = (float)a;
        k[c + j] = (float)(train ? -a * is[j] * is[j] * sdyx[j] / rows : 0.0);
        k[2 * c + j] = (float)(train ? -a * sdy[j] / rows : 0.0);
        k[3 * c + j] = (float)mu[j];
    }
    const float *A = k, *B = k + c, *C = k + 2 * c, *M = k + 3 * c;
#pragma omp parallel for schedule(static) if ((long)m * c > 32768)
    for (long r = 0; r < m; r++) {
        const float *xr = x + r * c;
        float *gr = g + r * c;
        if (act) {
#pragma omp simd
            for (int j = 0; j < c; j++) {
                float gv = act_passes(act, xr[j] * scale[j] + shift[j]) ? gr[j] : 0.0f;
                gr[j] = A[j] * gv + (B[j] * (xr[j] - M[j]) + C[j]);
            }
        } else
#pragma omp simd
            for (int j = 0; j < c; j++) gr[j] = A[j] * gr[j] + (B[j] * (xr[j] - M[j]) + C[j]);
    }
    sn_free(k);
    sn_free(mu);
}
