/* batchnorm.c - batch normalisation over x[m, c] (NHWC, m = N*H*W).
 *
 * Per-channel sums are accumulated in double over fixed blocks of rows whose size depends only
 * on m (not on the thread count), and the block partials are added in block order, so results
 * are bitwise independent of the number of threads.  The variance is computed in two passes
 * (mean first, then sum of squared deviations), as PyTorch's CPU kernel does.
 */
#include "kernels/batchnorm.h"
#include "core/error.h"
#include <math.h>
#include <string.h>

enum { SUM_A, SUM_SQDEV_A, SUM_B_AND_B_DEV_A };

/* mode SUM_A: o1 = sum a; SUM_SQDEV_A: o1 = sum (a-mu)^2;
 * SUM_B_AND_B_DEV_A: o1 = sum b, o2 = sum b*(a-mu).  Returns -1 if out of memory. */
static int col_sums(int mode, int m, int c, const float *a, const float *b, const double *mu, double *o1, double *o2) {
    long br = (m + 255L) / 256;
    if (br < 64) br = 64;
    int nb = (int)((m + br - 1) / br);
    double *p = sn_alloc(sizeof(double) * 2 * (size_t)nb * c, "batchnorm partial sums");
    if (!p) return -1;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nb; k++) {
        double *restrict p1 = p + (size_t)2 * k * c, *restrict p2 = p1 + c;
        memset(p1, 0, sizeof(double) * 2 * c);
        long r1 = (k + 1) * br < m ? (k + 1) * br : m;
        for (long r = k * br; r < r1; r++) {
            const float *restrict ar = a + r * c;
            if (mode == SUM_A) {
                for (int j = 0; j < c; j++) p1[j] += ar[j];
            } else if (mode == SUM_SQDEV_A) {
                for (int j = 0; j < c; j++) {
                    double t = (double)ar[j] - mu[j];
                    p1[j] += t * t;
                }
            } else {
                const float *restrict bp = b + r * c;
                for (int j = 0; j < c; j++) {
                    p1[j] += bp[j];
                    p2[j] += (double)bp[j] * ((double)ar[j] - mu[j]);
                }
            }
        }
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

/* y = x * scale + shift, per channel */
static void affine(int m, int c, const float *x, const float *scale, const float *shift, float *y) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < m; r++) {
        const float *restrict xr = x + r * c;
        float *restrict yr = y + r * c;
        for (int j = 0; j < c; j++) yr[j] = xr[j] * scale[j] + shift[j];
    }
}

void batchnorm_forward_train(int m, int c, const float *x, const float *gamma, const float *beta,
                             float eps, float momentum, float *run_mean, float *run_var,
                             float *save_mean, float *save_invstd, float *y) {
    if (m <= 0 || c <= 0) return;
    double *mean = sn_alloc(sizeof(double) * 2 * c, "batchnorm statistics"), *var = mean ? mean + c : NULL;
    float *ss = sn_alloc(sizeof(float) * 2 * c, "batchnorm scale");
    int ok = mean && ss && !col_sums(SUM_A, m, c, x, NULL, NULL, mean, NULL);
    if (ok) {
        for (int j = 0; j < c; j++) mean[j] /= m;
        ok = !col_sums(SUM_SQDEV_A, m, c, x, NULL, mean, var, NULL);
    }
    if (!ok) { /* out of memory: serial double loops, same results up to summation order */
        if (mean) sn_free(mean);
        if (ss) sn_free(ss);
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
    for (int j = 0; j < c; j++) {
        double v = var[j] / m, is = 1.0 / sqrt(v + eps);
        double g = gamma ? gamma[j] : 1.0, bt = beta ? beta[j] : 0.0;
        ss[j] = (float)(g * is);
        ss[c + j] = (float)(bt - mean[j] * g * is);
        if (save_mean) save_mean[j] = (float)mean[j];
        if (save_invstd) save_invstd[j] = (float)is;
        if (run_mean) run_mean[j] = (float)((1.0 - momentum) * run_mean[j] + momentum * mean[j]);
        if (run_var) run_var[j] = (float)((1.0 - momentum) * run_var[j] + momentum * (m > 1 ? v * m / (m - 1) : v));
    }
    affine(m, c, x, ss, ss + c, y);
    sn_free(ss);
    sn_free(mean);
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
    for (int j = 0; j < c; j++) {
        double is = 1.0 / sqrt((double)run_var[j] + eps), g = gamma ? gamma[j] : 1.0;
        ss[j] = (float)(g * is);
        ss[c + j] = (float)((beta ? beta[j] : 0.0) - run_mean[j] * g * is);
    }
    affine(m, c, x, ss, ss + c, y);
    sn_free(ss);
}

/* shared by train and eval backward:
 *   train: dx += g*is * (dy - sum_dy/m - xhat * sum_dy_xhat/m)  (centered)
 *   eval:  dx += g*is * dy
 *   dgamma += sum dy * xhat,  dbeta += sum dy,  xhat = (x - mu) * is */
static void bn_backward(int train, int m, int c, const float *x, const float *dy, const float *gamma,
                        const double *mu, const double *is, float *dx, float *dgamma, float *dbeta) {
    double *sdy = sn_alloc(sizeof(double) * 2 * c, "batchnorm backward sums"), *sdyx = sdy ? sdy + c : NULL;
    float *k = sn_alloc(sizeof(float) * 4 * c, "batchnorm backward coefficients");
    if (!sdy || !k || col_sums(SUM_B_AND_B_DEV_A, m, c, x, dy, mu, sdy, sdyx)) {
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
        double g = gamma ? gamma[j] : 1.0, a = g * is[j];
        if (dgamma) dgamma[j] += (float)(sdyx[j] * is[j]);
        if (dbeta) dbeta[j] += (float)sdy[j];
        k[j] = (float)a;
        k[c + j] = (float)(train ? -a * is[j] * is[j] * sdyx[j] / m : 0.0);
        k[2 * c + j] = (float)(train ? -a * sdy[j] / m : 0.0);
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
