/* test_eltwise.c - ReLU, ReLU6 (incl. the 0 and 6 boundaries), add, axpy and dropout.
 * ReLU/ReLU6/add are exact float operations, compared with PyTorch at tolerance 0.  Dropout's
 * mask cannot match PyTorch's RNG, so it is checked for its contract: mask from rng.h only
 * (same seed -> same mask, any thread count), keep rate ~1-p, kept values scaled by 1/(1-p),
 * backward uses the same mask and scale.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "core/rng.h"
#include "kernels/eltwise.h"

static float *fz(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void fixtures(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "eltwise: open layers.safetensors")) return;
    const char *m = kfix_meta(&k, "elt");
    size_t n = m ? (size_t)atol(m) : 0;
    float *x = kfix_get(&k, "elt.x", NULL), *dy = kfix_get(&k, "elt.dy", NULL);
    float *a = kfix_get(&k, "elt.a", NULL), *b = kfix_get(&k, "elt.b", NULL);
    if (!n || !x || !dy || !a || !b) {
        check(0, "eltwise fixtures present");
        return;
    }
    float *y = fz(n), *dx = fz(n);
    eltwise_relu_forward(n, x, y);
    check_close("relu forward", y, kfix_get(&k, "elt.relu.y", NULL), n, 0, 0);
    eltwise_relu_backward(n, y, dy, dx);
    check_close("relu backward (from the output; x = 0 gets 0)", dx, kfix_get(&k, "elt.relu.dx", NULL), n, 0, 0);
    eltwise_relu6_forward(n, x, y);
    check_close("relu6 forward", y, kfix_get(&k, "elt.relu6.y", NULL), n, 0, 0);
    memset(dx, 0, n * 4);
    eltwise_relu6_backward(n, y, dy, dx);
    check_close("relu6 backward (x = 0 and x = 6 get 0)", dx, kfix_get(&k, "elt.relu6.dx", NULL), n, 0, 0);
    eltwise_add_forward(n, a, b, y);
    check_close("add forward", y, kfix_get(&k, "elt.add.y", NULL), n, 0, 0);
    /* accumulate contract: relu backward twice == 2x */
    float *d2 = fz(n);
    eltwise_relu_backward(n, x, dy, d2); /* x as "output": where x > 0 */
    eltwise_relu_backward(n, x, dy, d2);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= d2[i] == (x[i] > 0 ? 2 * dy[i] : 0.0f);
    check(ok, "relu backward accumulates");
    free(y), free(dx), free(d2);
    kfix_close(&k);
}

static void large_and_dropout(void) {
    size_t n = 1000003; /* odd, above the threading threshold */
    float *x = fz(n), *y = fz(n), *y2 = fz(n), *dx = fz(n);
    fill_uniform(x, n, 7);
    for (size_t i = 0; i < n; i++) x[i] *= 8;
    eltwise_relu6_forward(n, x, y);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= y[i] == fminf(fmaxf(x[i], 0), 6);
    check(ok, "relu6 forward on %zu elements (threaded)", n);
    memcpy(y2, x, n * 4);
    eltwise_axpy(n, 0.5f, x, y2);
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= y2[i] == x[i] + 0.5f * x[i];
    check(ok, "axpy y += a*x");

    float p = 0.3f;
    uint8_t *mask = malloc(n), *mask2 = malloc(n);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    eltwise_dropout_forward(n, p, 42, 3, 0, x, y2, mask2);
    omp_set_num_threads(nt);
    eltwise_dropout_forward(n, p, 42, 3, 0, x, y, mask);
    check(!memcmp(y, y2, n * 4) && !memcmp(mask, mask2, n), "dropout: same seed gives the same output with 1 and %d threads", nt);
    size_t kept = 0;
    ok = 1;
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        kept += mask[i];
        ok &= mask[i] == !(rng_uniform(42, 3, i) < p);
        ok &= y[i] == (mask[i] ? x[i] * scale : 0.0f);
    }
    double rate = (double)kept / n, sd = sqrt(p * (1 - p) / n);
    check(ok, "dropout: mask is rng_uniform(seed, stream, i) >= p, kept values scaled by 1/(1-p)");
    check(fabs(rate - (1 - p)) < 5 * sd, "dropout: keep rate %.5f vs %.2f (5 sigma %.5f)", rate, 1 - p, 5 * sd);
    eltwise_dropout_forward(n, p, 43, 3, 0, x, y2, mask2);
    check(memcmp(mask, mask2, n) != 0, "dropout: another seed gives another mask");
    for (size_t i = 0; i < n; i++) dx[i] = 1.0f;
    eltwise_dropout_backward(n, p, mask, x, dx);
    ok = 1;
    for (size_t i = 0; i < n; i++) { /* the compiler may fuse the multiply-add (FMA): 1 ulp */
        float want = 1.0f + (mask[i] ? x[i] * scale : 0.0f);
        ok &= fabsf(dx[i] - want) <= 2.4e-7f * (1.0f + fabsf(x[i] * scale));
    }
    check(ok, "dropout backward: dx += mask * dy / (1-p) (within 1 ulp)");
    free(x), free(y), free(y2), free(dx), free(mask), free(mask2);
}

static const test_case cases[] = {
    {"pytorch", fixtures},
    {"large-and-dropout", large_and_dropout},
};
TEST_MAIN(cases)
