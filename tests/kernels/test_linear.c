/* test_linear.c - sgemm (oneDNN) against the reference loop for every transpose combination,
 * leading dimensions larger than the row, beta = 0 / 1 / other, odd sizes; and nn.Linear
 * forward/backward against PyTorch plus finite differences.
 *
 * Tolerances: float32 GEMM with K <= 1024 terms of size <= 1 vs a double-accumulated
 * reference / float64 oracle: error ~ sqrt(K) * 2^-24 * scale typically, K * 2^-24 worst
 * (6e-5 at K = 1024, which never happens with random signs): rtol 1e-5 of the tensor's max.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"

static float *fr(size_t n, unsigned long long seed) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(p, n, seed);
    return p;
}
static float *fz(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void gemm_cases(void) {
    int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {128, 96, 300}, {5, 200, 1}, {300, 2, 129}};
    float betas[] = {0.0f, 1.0f, -0.5f};
    int nfail = 0, ncase = 0;
    double worst = 0;
    for (int s = 0; s < 6; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 3; bi++) {
                    int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
                    float *A = fr((size_t)(ta ? K : M) * lda, 1 + s), *B = fr((size_t)(tb ? N : K) * ldb, 2 + s);
                    float *C1 = fr((size_t)M * ldc, 3), *C2 = malloc(sizeof(float) * M * ldc);
                    if (betas[bi] == 0.0f)
                        for (size_t i = 0; i < (size_t)M * ldc; i++) C1[i] = NAN; /* beta 0 must ignore C */
                    memcpy(C2, C1, sizeof(float) * M * ldc);
                    gemm_sgemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, betas[bi], C1, ldc);
                    gemm_sgemm_ref(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, betas[bi], C2, ldc);
                    double e = 0, sc = 0;
                    int pad_ok = 1;
                    for (int i = 0; i < M; i++) {
                        for (int j = 0; j < N; j++) {
                            double d = fabs((double)C1[(size_t)i * ldc + j] - C2[(size_t)i * ldc + j]);
                            if (!(d <= e)) e = d;
                            sc = fmax(sc, fabs(C2[(size_t)i * ldc + j]));
                        }
                        for (int j = N; j < ldc; j++)
                            pad_ok &= (memcmp(&C1[(size_t)i * ldc + j], &C2[(size_t)i * ldc + j], 4) == 0);
                    }
                    ncase++;
                    double rel = sc > 0 ? e / sc : e;
                    if (!(rel <= 1e-5) || !pad_ok) {
                        nfail++;
                        note("sgemm M%d N%d K%d ta%d tb%d beta %g: rel err %.3g, padding untouched %d", M, N, K, ta, tb,
                             betas[bi], rel, pad_ok);
                    }
                    if (rel > worst) worst = rel;
                    free(A), free(B), free(C1), free(C2);
                }
    check(nfail == 0, "sgemm vs sgemm_ref: %d cases (all transposes, ld > row, beta 0/1/-0.5), worst rel err %.3g (tol 1e-5)",
          ncase, worst);
}

static void linear_fixtures(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "linear: open layers.safetensors")) return;
    char names[8][64];
    int nc = kfix_list(kfix_meta(&k, "linear"), names, 8);
    check(nc >= 3, "linear: %d fixture cases", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[96], w[128];
        snprintf(key, sizeof key, "linear.%s", nm);
        const char *m = kfix_meta(&k, key);
        int n, in, out;
        if (!m || sscanf(m, "%d %d %d", &n, &in, &out) != 3) {
            check(0, "linear %s: metadata", nm);
            continue;
        }
#define G(s) kfix_getf(&k, NULL, "linear.%s." s, nm)
        float *x = G("x"), *wt = G("w"), *b = G("b"), *dy = G("dy");
        float *y = fz((size_t)n * out), *dx = fz((size_t)n * in), *dw = fz((size_t)out * in), *db = fz(out);
        linear_forward(n, in, out, x, wt, b, y);
        snprintf(w, sizeof w, "linear %s forward", nm);
        check_close(w, y, G("y"), (size_t)n * out, 1e-5f, 0);
        linear_backward(n, in, out, x, wt, dy, dx, dw, db);
        snprintf(w, sizeof w, "linear %s dx", nm);
        check_close(w, dx, G("dx"), (size_t)n * in, 1e-5f, 0);
        snprintf(w, sizeof w, "linear %s dw", nm);
        check_close(w, dw, G("dw"), (size_t)out * in, 1e-5f, 0);
        snprintf(w, sizeof w, "linear %s db", nm);
        check_close(w, db, G("db"), out, 1e-5f, 0);
        /* accumulate: second call doubles, NULLs skipped */
        linear_backward(n, in, out, x, wt, dy, NULL, dw, NULL);
        float *dw2 = G("dw");
        for (size_t i = 0; i < (size_t)out * in; i++) dw2[i] *= 2;
        snprintf(w, sizeof w, "linear %s: backward accumulates (dw after 2 calls)", nm);
        check_close(w, dw, dw2, (size_t)out * in, 1e-5f, 0);
#undef G
        free(y), free(dx), free(dw), free(db);
    }
    kfix_close(&k);
}

static void linear_fd(void) {
    int n = 3, in = 6, out = 4;
    float *x = fr(n * in, 5), *w = fr(out * in, 6), *b = fr(out, 7), *r = fr(n * out, 8), *y = fz(n * out);
    float *dx = fz(n * in), *dw = fz(out * in), *db = fz(out);
    linear_backward(n, in, out, x, w, r, dx, dw, db);
    struct { float *p, *g; int len; const char *nm; } t[3] = {{x, dx, n * in, "x"}, {w, dw, out * in, "w"}, {b, db, out, "b"}};
    for (int ti = 0; ti < 3; ti++) {
        double worst = 0, gmax = 0;
        for (int i = 0; i < t[ti].len; i++) gmax = fmax(gmax, fabs(t[ti].g[i]));
        for (int i = 0; i < t[ti].len; i++) {
            double l[2];
            float v = t[ti].p[i];
            for (int s = 0; s < 2; s++) {
                t[ti].p[i] = v + (s ? -1e-2f : 1e-2f);
                linear_forward(n, in, out, x, w, b, y);
                l[s] = 0;
                for (int j = 0; j < n * out; j++) l[s] += (double)y[j] * r[j];
            }
            t[ti].p[i] = v;
            worst = fmax(worst, fabs((l[0] - l[1]) / 2e-2 - t[ti].g[i]));
        }
        check(worst <= 1e-2 * gmax, "linear finite differences d/d%s (every element): max err %.3g, scale %.3g (tol rel 1e-2, h 1e-2)",
              t[ti].nm, worst, gmax);
    }
    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
}

static const test_case cases[] = {
    {"sgemm", gemm_cases},
    {"pytorch", linear_fixtures},
    {"finite-differences", linear_fd},
};
TEST_MAIN(cases)
