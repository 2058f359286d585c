/* test_bn.c - batch norm (train forward incl. running statistics and saved mean/invstd, train
 * backward, eval forward and backward) against PyTorch; finite differences through the batch
 * statistics; independence of the thread count; the accumulate contract.
 *
 * Tolerances (max|err| <= rtol * max|ref|): statistics are summed in double, so mean/invstd and
 * running stats are exact to float rounding (rtol 1e-6).  y and dx are float expressions of a
 * few terms per element (dx: A*dy + B*(x-mu) + C with per-channel float coefficients): rtol 2e-6.
 * dgamma/dbeta are double sums rounded once: rtol 1e-6.  Finite differences: L = sum(y*r) in
 * double, h = 1e-2, central difference; BN is smooth with O(1) curvature at this scale, so the
 * truncation error is ~h^2 ~ 1e-4 relative: tolerance 1e-2 of max|grad|.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/batchnorm.h"

static float *fz(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fr(size_t n, unsigned long long seed, float scale, float off) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(p, n, seed);
    for (size_t i = 0; i < n; i++) p[i] = p[i] * scale + off;
    return p;
}
static void cl(const char *nm, const char *part, const float *a, const float *b, size_t n, float rtol) {
    char w[128];
    snprintf(w, sizeof w, "bn %s: %s", nm, part);
    check_close(w, a, b, n, rtol, 0);
}

static void fixtures(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "bn: open layers.safetensors")) return;
    char names[16][64];
    int nc = kfix_list(kfix_meta(&k, "bn"), names, 16);
    check(nc >= 3, "bn: %d fixture cases", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[96];
        snprintf(key, sizeof key, "bn.%s", nm);
        const char *m = kfix_meta(&k, key);
        int n, h, w, c;
        float eps, mom;
        if (!m || sscanf(m, "%d %d %d %d %f %f", &n, &h, &w, &c, &eps, &mom) != 6) {
            check(0, "bn %s: metadata", nm);
            continue;
        }
        int M = n * h * w;
        size_t X = (size_t)M * c;
#define G(s) kfix_getf(&k, NULL, "bn.%s." s, nm)
        float *x = G("x"), *gamma = G("gamma"), *beta = G("beta"), *rm0 = G("rm0"), *rv0 = G("rv0"), *dy = G("dy");
        if (!x || !gamma || !beta || !rm0 || !rv0 || !dy) continue;
        float *rm = malloc(c * 4), *rv = malloc(c * 4), *sm = fz(c), *si = fz(c), *y = fz(X), *dx = fz(X), *dg = fz(c), *db = fz(c);
        memcpy(rm, rm0, c * 4);
        memcpy(rv, rv0, c * 4);
        batchnorm_forward_train(M, c, x, gamma, beta, eps, mom, rm, rv, sm, si, y);
        cl(nm, "train forward y", y, G("y"), X, 2e-6f);
        cl(nm, "running mean", rm, G("rm"), c, 1e-6f);
        cl(nm, "running var (unbiased)", rv, G("rv"), c, 1e-6f);
        cl(nm, "saved mean", sm, G("save_mean"), c, 1e-6f);
        cl(nm, "saved invstd", si, G("save_invstd"), c, 1e-6f);
        batchnorm_backward_train(M, c, x, dy, gamma, sm, si, dx, dg, db);
        cl(nm, "train backward dx", dx, G("dx"), X, 2e-6f);
        cl(nm, "train backward dgamma", dg, G("dgamma"), c, 1e-6f);
        cl(nm, "train backward dbeta", db, G("dbeta"), c, 1e-6f);
        batchnorm_forward_eval(M, c, x, gamma, beta, rm0, rv0, eps, y);
        cl(nm, "eval forward y", y, G("eval_y"), X, 2e-6f);
        memset(dx, 0, X * 4), memset(dg, 0, c * 4), memset(db, 0, c * 4);
        batchnorm_backward_eval(M, c, x, dy, gamma, rm0, rv0, eps, dx, dg, db);
        cl(nm, "eval backward dx", dx, G("eval_dx"), X, 2e-6f);
        cl(nm, "eval backward dgamma", dg, G("eval_dgamma"), c, 1e-6f);
        cl(nm, "eval backward dbeta", db, G("eval_dbeta"), c, 1e-6f);
#undef G
        free(rm), free(rv), free(sm), free(si), free(y), free(dx), free(dg), free(db);
    }
    kfix_close(&k);
}

static double bn_loss(int M, int c, const float *x, const float *g, const float *b, const float *r, float *y, float *sm, float *si) {
    batchnorm_forward_train(M, c, x, g, b, 1e-5f, 0.1f, NULL, NULL, sm, si, y);
    double s = 0;
    for (size_t i = 0; i < (size_t)M * c; i++) s += (double)y[i] * r[i];
    return s;
}

static void finite_diff(void) {
    int M = 12, c = 5;
    size_t X = (size_t)M * c;
    float *x = fr(X, 1, 1.5f, 0.3f), *g = fr(c, 2, 0.5f, 1.0f), *b = fr(c, 3, 1, 0), *r = fr(X, 4, 1, 0);
    float *y = fz(X), *sm = fz(c), *si = fz(c), *dx = fz(X), *dg = fz(c), *db = fz(c);
    bn_loss(M, c, x, g, b, r, y, sm, si);
    batchnorm_backward_train(M, c, x, r, g, sm, si, dx, dg, db);
    const float h = 1e-2f;
    struct { float *p, *gr; size_t len; const char *nm; } t[3] = {{x, dx, X, "x"}, {g, dg, (size_t)c, "gamma"}, {b, db, (size_t)c, "beta"}};
    for (int ti = 0; ti < 3; ti++) {
        double worst = 0, gmax = 0;
        for (size_t i = 0; i < t[ti].len; i++) gmax = fmax(gmax, fabs(t[ti].gr[i]));
        for (size_t k = 0; k < 8; k++) {
            size_t i = (k * 7919 + 3) % t[ti].len;
            float v = t[ti].p[i];
            t[ti].p[i] = v + h;
            double lp = bn_loss(M, c, x, g, b, r, y, sm, si);
            t[ti].p[i] = v - h;
            double lm = bn_loss(M, c, x, g, b, r, y, sm, si);
            t[ti].p[i] = v;
            worst = fmax(worst, fabs((lp - lm) / (2.0 * h) - t[ti].gr[i]));
        }
        check(worst <= 1e-2 * gmax, "bn finite differences d/d%s (train, through the batch statistics): max |fd - analytic| %.3g, scale %.3g (tol rel 1e-2, h 1e-2)",
              t[ti].nm, worst, gmax);
    }
    free(x), free(g), free(b), free(r), free(y), free(sm), free(si), free(dx), free(dg), free(db);
}

/* bitwise the same results with 1 thread and with all threads; repeated calls equal */
static void thread_independence(void) {
    int M = 32 * 17 * 13, c = 67;
    size_t X = (size_t)M * c;
    float *x = fr(X, 5, 2, 1), *g = fr(c, 6, 0.5f, 1), *b = fr(c, 7, 1, 0), *dy = fr(X, 8, 1, 0);
    float *y[2], *dx[2], *dg[2], *db[2], *rm[2], *rv[2], *sm[2], *si[2];
    int nt = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r == 0 ? 1 : nt);
        y[r] = fz(X), dx[r] = fz(X), dg[r] = fz(c), db[r] = fz(c), rm[r] = fz(c), rv[r] = fr(c, 9, 0, 1), sm[r] = fz(c), si[r] = fz(c);
        batchnorm_forward_train(M, c, x, g, b, 1e-5f, 0.1f, rm[r], rv[r], sm[r], si[r], y[r]);
        batchnorm_backward_train(M, c, x, dy, g, sm[r], si[r], dx[r], dg[r], db[r]);
    }
    omp_set_num_threads(nt);
    check(!memcmp(y[0], y[1], X * 4) && !memcmp(dx[0], dx[1], X * 4) && !memcmp(dg[0], dg[1], c * 4) &&
              !memcmp(db[0], db[1], c * 4) && !memcmp(rm[0], rm[1], c * 4) && !memcmp(rv[0], rv[1], c * 4),
          "bn train forward+backward: bitwise equal with 1 and %d threads (m %d, c %d)", nt, M, c);
    /* accumulate contract: a second backward adds the same again */
    float *dx2 = malloc(X * 4), *dg2 = malloc(c * 4);
    memcpy(dx2, dx[1], X * 4), memcpy(dg2, dg[1], c * 4);
    batchnorm_backward_train(M, c, x, dy, g, sm[1], si[1], dx2, dg2, NULL);
    for (size_t i = 0; i < X; i++) dx[1][i] *= 2;
    for (int i = 0; i < c; i++) dg[1][i] *= 2;
    check_close("bn backward accumulates into dx (2 calls == 2x)", dx2, dx[1], X, 1e-6f, 0);
    check_close("bn backward accumulates into dgamma, dbeta NULL skipped", dg2, dg[1], c, 1e-6f, 0);
    for (int r = 0; r < 2; r++) free(y[r]), free(dx[r]), free(dg[r]), free(db[r]), free(rm[r]), free(rv[r]), free(sm[r]), free(si[r]);
    free(x), free(g), free(b), free(dy), free(dx2), free(dg2);
}

/* batchnorm_train_stats and batchnorm_act_backward (train; ReLU6, ReLU, none) against the
 * unfused definition summed in double, on shapes that leave channel tails (c % 8, c % 16) and
 * row groups (m % 4) for the vector sums, with values on both sides of the ReLU6 bounds; and
 * bitwise equal with 1 and all threads.  rtol as the fixtures' (2e-6 dx, 1e-6 sums) */
static void act_backward_reference(void) {
    const int shapes[][2] = {{7, 3}, {203, 8}, {401, 27}, {1031, 40}, {130, 96}};
    const sn_act acts[3] = {ACT_RELU6, ACT_RELU, ACT_NONE};
    int nt = omp_get_max_threads();
    for (int si = 0; si < 5; si++)
        for (int ai = 0; ai < 3; ai++) {
            int M = shapes[si][0], c = shapes[si][1];
            size_t X = (size_t)M * c;
            sn_act act = acts[ai];
            float *x = fr(X, 11 + si, 8, -1), *g0 = fr(c, 12, 0.5f, 1), *b = fr(c, 13, 4, 0), *dy = fr(X, 101 + si, 2, -1);
            float *sm = fz(c), *is = fz(c), *sc = fz(c), *sh = fz(c), *g[2], *dg[2], *db[2];
            double *ref = calloc(X + 4 * (size_t)c, sizeof(double)), *mu = ref + X, *iv = mu + c, *s1 = iv + c, *s2 = s1 + c;
            batchnorm_train_stats(M, c, x, g0, b, 1e-5f, 0.1f, NULL, NULL, sm, is, sc, sh);
            for (int j = 0; j < c; j++) {
                for (int r = 0; r < M; r++) mu[j] += x[(size_t)r * c + j];
                mu[j] /= M;
                double v = 0;
                for (int r = 0; r < M; r++) v += (x[(size_t)r * c + j] - mu[j]) * (x[(size_t)r * c + j] - mu[j]);
                iv[j] = 1.0 / sqrt(v / M + 1e-5);
                for (int r = 0; r < M; r++) {
                    size_t e = (size_t)r * c + j;
                    double gm = act_passes(act, fmaf(x[e], sc[j], sh[j])) ? dy[e] : 0.0;
                    s1[j] += gm;
                    s2[j] += gm * (x[e] - mu[j]);
                }
            }
            float *fref = malloc(X * 4), *fmu = malloc(c * 8), *fiv = fmu + c, *fdg = malloc(c * 8), *fdb = fdg + c;
            for (int j = 0; j < c; j++) {
                fmu[j] = (float)mu[j], fiv[j] = (float)iv[j];
                fdg[j] = (float)(s2[j] * iv[j]), fdb[j] = (float)s1[j];
                for (int r = 0; r < M; r++) {
                    size_t e = (size_t)r * c + j;
                    double gm = act_passes(act, fmaf(x[e], sc[j], sh[j])) ? dy[e] : 0.0;
                    fref[e] = (float)(g0[j] * iv[j] * (gm - s1[j] / M - (x[e] - mu[j]) * iv[j] * iv[j] * s2[j] / M));
                }
            }
            char w[96];
            snprintf(w, sizeof w, "bn act %d m %d c %d: saved mean", act, M, c);
            check_close(w, sm, fmu, c, 1e-6f, 1e-6f);
            snprintf(w, sizeof w, "bn act %d m %d c %d: saved invstd", act, M, c);
            check_close(w, is, fiv, c, 1e-6f, 0);
            for (int r = 0; r < 2; r++) {
                omp_set_num_threads(r == 0 ? 1 : nt);
                g[r] = malloc(X * 4), dg[r] = fz(c), db[r] = fz(c);
                memcpy(g[r], dy, X * 4);
                batchnorm_act_backward(1, M, c, x, sc, sh, act, g0, sm, is, 1e-5f, g[r], dg[r], db[r]);
            }
            omp_set_num_threads(nt);
            snprintf(w, sizeof w, "bn act %d m %d c %d: backward dx", act, M, c);
            check_close(w, g[1], fref, X, 2e-6f, 0);
            snprintf(w, sizeof w, "bn act %d m %d c %d: dgamma", act, M, c);
            check_close(w, dg[1], fdg, c, 1e-6f, 0);
            snprintf(w, sizeof w, "bn act %d m %d c %d: dbeta", act, M, c);
            check_close(w, db[1], fdb, c, 1e-6f, 0);
            check(!memcmp(g[0], g[1], X * 4) && !memcmp(dg[0], dg[1], c * 4) && !memcmp(db[0], db[1], c * 4),
                  "bn act %d m %d c %d: backward bitwise equal with 1 and %d threads", act, M, c, nt);
            for (int r = 0; r < 2; r++) free(g[r]), free(dg[r]), free(db[r]);
            free(x), free(g0), free(b), free(dy), free(sm), free(is), free(sc), free(sh), free(ref), free(fref), free(fmu),
                free(fdg);
        }
}

static const test_case cases[] = {
    {"pytorch", fixtures},
    {"finite-differences", finite_diff},
    {"thread-independence", thread_independence},
    {"act-backward-reference", act_backward_reference},
};
TEST_MAIN(cases)
