/* test_pool.c - max pool (values, argmax, backward), average pool with count_include_pad true
 * and false, global average pool and fastai's concat pool against PyTorch; fast vs reference
 * on awkward shapes; finite differences; determinism.
 *
 * Tolerances: max pool selects values, so forward and argmax must be exact and backward sums at
 * most kh*kw gradient values per input (rtol 1e-6).  Average pools sum <= 9 (windowed) or
 * <= 35 (global) float terms then scale: rtol 1e-6 against the float64 oracle.  Finite
 * differences: h = 1e-3 (max pool: elements whose perturbation changes an argmax are skipped),
 * tolerance 1e-2 of max|grad|.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/pool.h"

static float *fz(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fr(size_t n, unsigned long long seed) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(p, n, seed);
    return p;
}
static void cl(const char *nm, const char *part, const float *a, const float *b, size_t n, float rtol) {
    char w[128];
    snprintf(w, sizeof w, "pool %s: %s", nm, part);
    check_close(w, a, b, n, rtol, 0);
}

static void fixtures(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "pool: open layers.safetensors")) return;
    char names[16][64];
    int nc = kfix_list(kfix_meta(&k, "pool"), names, 16);
    check(nc >= 6, "pool: %d windowed fixture cases", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[96];
        snprintf(key, sizeof key, "pool.%s", nm);
        const char *m = kfix_meta(&k, key);
        int ismax, n;
        pool_desc d = {0};
        if (!m || sscanf(m, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d", &ismax, &n, &d.h, &d.w, &d.c, &d.kh, &d.kw, &d.sh,
                         &d.sw, &d.pt, &d.pb, &d.pl, &d.pr, &d.count_include_pad) != 14 ||
            pool_desc_init(&d)) {
            check(0, "pool %s: metadata / desc", nm);
            continue;
        }
        size_t X = (size_t)n * d.h * d.w * d.c, Y = (size_t)n * d.oh * d.ow * d.c, cnt;
        float *x = kfix_getf(&k, NULL, "pool.%s.x", nm), *yr = kfix_getf(&k, &cnt, "pool.%s.y", nm);
        float *dy = kfix_getf(&k, NULL, "pool.%s.dy", nm), *dxr = kfix_getf(&k, NULL, "pool.%s.dx", nm);
        if (!x || !yr || !dy || !dxr || !check(cnt == Y, "pool %s: output size matches", nm)) continue;
        float *y = fz(Y), *dx = fz(X), *y2 = fz(Y);
        int32_t *am = calloc(Y, 4), *am2 = calloc(Y, 4);
        if (ismax) {
            float *amr = kfix_getf(&k, NULL, "pool.%s.argmax", nm);
            maxpool_forward(&d, n, x, y, am);
            cl(nm, "max forward", y, yr, Y, 0);
            size_t bad = 0;
            for (size_t i = 0; i < Y; i++) bad += am[i] != (int32_t)amr[i];
            check(bad == 0, "pool %s: argmax equals PyTorch's indices (%zu differ)", nm, bad);
            maxpool_backward(&d, n, dy, am, dx);
            cl(nm, "max backward", dx, dxr, X, 1e-6f);
            maxpool_forward_ref(&d, n, x, y2, am2);
            check(!memcmp(y, y2, Y * 4) && !memcmp(am, am2, Y * 4), "pool %s: fast == ref (values and argmax)", nm);
        } else {
            avgpool_forward(&d, n, x, y);
            cl(nm, d.count_include_pad ? "avg forward (count_include_pad)" : "avg forward (exclude pad)", y, yr, Y, 1e-6f);
            avgpool_backward(&d, n, dy, dx);
            cl(nm, "avg backward", dx, dxr, X, 1e-6f);
            avgpool_forward_ref(&d, n, x, y2);
            cl(nm, "avg ref forward", y2, yr, Y, 1e-6f);
        }
        free(y), free(dx), free(y2), free(am), free(am2);
    }
    nc = kfix_list(kfix_meta(&k, "gpool"), names, 16);
    check(nc >= 2, "pool: %d global fixture cases", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[96];
        snprintf(key, sizeof key, "gpool.%s", nm);
        const char *m = kfix_meta(&k, key);
        int n, h, w, c;
        if (!m || sscanf(m, "%d %d %d %d", &n, &h, &w, &c) != 4) {
            check(0, "gpool %s: metadata", nm);
            continue;
        }
        size_t X = (size_t)n * h * w * c;
#define G(s) kfix_getf(&k, NULL, "gpool.%s." s, nm)
        float *x = G("x"), *y = fz(2 * n * c), *dx = fz(X);
        int32_t *am = calloc(n * c, 4);
        global_avgpool_forward(n, h * w, c, x, y);
        cl(nm, "global avg forward", y, G("gap_y"), n * c, 1e-6f);
        global_avgpool_backward(n, h * w, c, G("gap_dy"), dx);
        cl(nm, "global avg backward", dx, G("gap_dx"), X, 1e-6f);
        memset(dx, 0, X * 4);
        concatpool_forward(n, h * w, c, x, y, am);
        cl(nm, "concat pool forward [max | avg]", y, G("cat_y"), 2 * n * c, 1e-6f);
        concatpool_backward(n, h * w, c, G("cat_dy"), am, dx);
        cl(nm, "concat pool backward", dx, G("cat_dx"), X, 1e-6f);
#undef G
        free(y), free(dx), free(am);
    }
    kfix_close(&k);
}

static void fast_vs_ref(void) {
    pool_desc cases[] = {
        {.h = 13, .w = 11, .c = 100, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .pt = 1, .pb = 1, .pl = 1, .pr = 1},
        {.h = 8, .w = 9, .c = 7, .kh = 3, .kw = 2, .sh = 1, .sw = 2, .pt = 0, .pb = 1, .pl = 1, .pr = 0}, /* TF SAME-like */
        {.h = 5, .w = 5, .c = 3, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .pt = 2, .pb = 2, .pl = 2, .pr = 2},
    };
    for (int ci = 0; ci < 3; ci++)
        for (int cip = 0; cip < 2; cip++) {
            pool_desc d = cases[ci];
            d.count_include_pad = cip;
            if (!check(pool_desc_init(&d) == 0, "pool desc %d init", ci)) continue;
            int n = 3;
            size_t X = (size_t)n * d.h * d.w * d.c, Y = (size_t)n * d.oh * d.ow * d.c;
            float *x = fr(X, 40 + ci), *y1 = fz(Y), *y2 = fz(Y);
            int32_t *a1 = calloc(Y, 4), *a2 = calloc(Y, 4);
            maxpool_forward(&d, n, x, y1, a1);
            maxpool_forward_ref(&d, n, x, y2, a2);
            check(!memcmp(y1, y2, Y * 4) && !memcmp(a1, a2, Y * 4),
                  "maxpool fast == ref (%dx%d c%d k%dx%d s%d,%d pad %d %d %d %d)", d.h, d.w, d.c, d.kh, d.kw, d.sh, d.sw,
                  d.pt, d.pb, d.pl, d.pr);
            avgpool_forward(&d, n, x, y1);
            avgpool_forward_ref(&d, n, x, y2);
            char w[160];
            snprintf(w, sizeof w, "avgpool fast vs ref (case %d, count_include_pad %d)", ci, cip);
            check_close(w, y1, y2, Y, 1e-6f, 0);
            /* finite differences of L = sum(y * r) for avg pool (linear: exact up to rounding) */
            float *r = fr(Y, 50 + ci), *dx = fz(X);
            avgpool_backward(&d, n, r, dx);
            double worst = 0, gmax = 0;
            for (size_t i = 0; i < X; i++) gmax = fmax(gmax, fabs(dx[i]));
            for (size_t k = 0; k < 8; k++) {
                size_t i = (k * 104729 + 17) % X;
                double l[2];
                float v = x[i];
                for (int s = 0; s < 2; s++) {
                    x[i] = v + (s ? -1e-3f : 1e-3f);
                    avgpool_forward(&d, n, x, y1);
                    l[s] = 0;
                    for (size_t j = 0; j < Y; j++) l[s] += (double)y1[j] * r[j];
                }
                x[i] = v;
                worst = fmax(worst, fabs((l[0] - l[1]) / 2e-3 - dx[i]));
            }
            check(worst <= 1e-2 * gmax, "avgpool finite differences (case %d, cip %d): max err %.3g, scale %.3g (tol rel 1e-2, h 1e-3)",
                  ci, cip, worst, gmax);
            /* max pool finite differences, skipping perturbations that move an argmax */
            memset(dx, 0, X * 4);
            maxpool_forward(&d, n, x, y1, a1);
            maxpool_backward(&d, n, r, a1, dx);
            worst = 0, gmax = 0;
            int used = 0;
            for (size_t i = 0; i < X; i++) gmax = fmax(gmax, fabs(dx[i]));
            for (size_t k = 0; k < 40 && used < 8; k++) {
                size_t i = (k * 7919 + 5) % X;
                double l[2];
                int moved = 0;
                float v = x[i];
                for (int s = 0; s < 2; s++) {
                    x[i] = v + (s ? -1e-3f : 1e-3f);
                    maxpool_forward(&d, n, x, y1, a2);
                    moved |= memcmp(a1, a2, Y * 4) != 0;
                    l[s] = 0;
                    for (size_t j = 0; j < Y; j++) l[s] += (double)y1[j] * r[j];
                }
                x[i] = v;
                if (moved) continue;
                used++;
                worst = fmax(worst, fabs((l[0] - l[1]) / 2e-3 - dx[i]));
            }
            check(used >= 4 && worst <= 1e-2 * gmax, "maxpool finite differences (case %d): %d points, max err %.3g, scale %.3g (tol rel 1e-2, h 1e-3)",
                  ci, used, worst, gmax);
            /* determinism of the backward passes */
            float *dxa = fz(X), *dxb = fz(X);
            maxpool_backward(&d, n, r, a1, dxa), avgpool_backward(&d, n, r, dxa);
            maxpool_backward(&d, n, r, a1, dxb), avgpool_backward(&d, n, r, dxb);
            check(!memcmp(dxa, dxb, X * 4), "pool backward determinism (case %d, cip %d)", ci, cip);
            free(x), free(y1), free(y2), free(a1), free(a2), free(r), free(dx), free(dxa), free(dxb);
        }
    pool_desc bad = {.h = 4, .w = 4, .c = 1, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 3};
    check(pool_desc_init(&bad) == -1, "pool_desc_init rejects padding >= window");
}

/* concat pool: finite differences on the average half and max half */
static void concat_fd(void) {
    int n = 2, hw = 6, c = 5;
    size_t X = (size_t)n * hw * c;
    float *x = fr(X, 60), *r = fr(2 * n * c, 61), *y = fz(2 * n * c), *dx = fz(X);
    int32_t *am = calloc(n * c, 4), *am2 = calloc(n * c, 4);
    concatpool_forward(n, hw, c, x, y, am);
    concatpool_backward(n, hw, c, r, am, dx);
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < X; i++) gmax = fmax(gmax, fabs(dx[i]));
    for (size_t i = 0; i < X; i++) {
        double l[2];
        float v = x[i];
        int moved = 0;
        for (int s = 0; s < 2; s++) {
            x[i] = v + (s ? -1e-3f : 1e-3f);
            concatpool_forward(n, hw, c, x, y, am2);
            moved |= memcmp(am, am2, n * c * 4) != 0;
            l[s] = 0;
            for (int j = 0; j < 2 * n * c; j++) l[s] += (double)y[j] * r[j];
        }
        x[i] = v;
        if (!moved) worst = fmax(worst, fabs((l[0] - l[1]) / 2e-3 - dx[i]));
    }
    check(worst <= 1e-2 * gmax, "concat pool finite differences (all elements): max err %.3g, scale %.3g (tol rel 1e-2, h 1e-3)", worst, gmax);
    free(x), free(r), free(y), free(dx), free(am), free(am2);
}

static const test_case cases[] = {
    {"pytorch", fixtures},
    {"fast-vs-ref", fast_vs_ref},
    {"concat-finite-differences", concat_fd},
};
TEST_MAIN(cases)
