/* test_winograd.c - Winograd F(2x2,3x3) and F(4x4,3x3) convolution (kernels/conv_winograd.h)
 * against the reference convolution (conv2d_ref_forward, double sums) followed by the residual
 * add and the activation: odd and even sizes down to 1-3 pixel maps, 7x7 and maps of several
 * blocks of tiles, channel counts that are no multiple of 8 or 24, padding 0, 1, 2 and
 * asymmetric, batch 1 and 3, with and without bias, residual (also in place: res == y) and
 * ReLU/ReLU6, on 1 and 2 threads; the backward data pass of the same shapes as the convolution
 * of conv2d_winograd_backward_data_desc, against conv2d_ref_backward_data.
 *
 * Tolerance: the transforms scale the rounding of each product by their coefficients, so the
 * error is judged against what bounds it: for each output, max |y - ref| / (sum |x||w| + |b| +
 * |res|) (the reference convolution of |x| and |w|, plus |b| and |res|).  F(2x2)'s transforms
 * add and subtract with unit coefficients (and halves in G): bound 2e-6; F(4x4)'s reach 8 in A^T,
 * 5 in B^T and 1/24 in G, each scaling the rounding of what it multiplies: bound 2e-5.  Both are
 * about ten times the worst measured (2.4e-7 and 2.8e-6), which each check prints.  The output
 * is bitwise the same on 1 and 2 threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/conv_winograd.h"

/* one shape: input h x w x cin -> cout, padding top, bottom, left, right, bias, residual, act */
typedef struct {
    int h, w, cin, cout, pt, pb, pl, pr, bias, res;
    sn_act act;
} shape;

static const shape small[] = {
    {1, 1, 5, 3, 1, 1, 1, 1, 1, 0, ACT_NONE},    {2, 3, 8, 8, 1, 1, 1, 1, 1, 1, ACT_RELU},
    {3, 2, 9, 17, 1, 1, 1, 1, 0, 1, ACT_NONE},   {3, 3, 3, 1, 0, 0, 0, 0, 1, 0, ACT_RELU6},
    {7, 7, 16, 24, 1, 1, 1, 1, 1, 1, ACT_RELU},  {7, 7, 13, 30, 0, 1, 1, 0, 1, 0, ACT_NONE},
    {9, 11, 24, 20, 1, 1, 1, 1, 1, 1, ACT_RELU}, {6, 5, 7, 9, 2, 0, 0, 2, 0, 0, ACT_NONE},
    {8, 8, 32, 48, 1, 1, 1, 1, 1, 1, ACT_RELU},  {5, 12, 40, 8, 2, 2, 1, 1, 1, 0, ACT_RELU},
};
static const shape large[] = {
    {14, 14, 64, 72, 1, 1, 1, 1, 1, 1, ACT_RELU}, {28, 28, 32, 32, 1, 1, 1, 1, 1, 0, ACT_RELU},
    {17, 23, 48, 40, 1, 1, 1, 1, 1, 1, ACT_NONE}, {56, 56, 16, 24, 1, 1, 1, 1, 1, 1, ACT_RELU},
    {7, 7, 260, 130, 1, 1, 1, 1, 1, 1, ACT_RELU},
};

static const double TOL[5] = {0, 0, 2e-6, 0, 2e-5}; /* by tile m */

static float *filled(size_t n, unsigned long long seed) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (p) fill_uniform(p, n, seed);
    return p;
}

static float *absolute(const float *a, size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++) p[i] = fabsf(a[i]);
    return p;
}

/* the reference: act(conv(x) + b + res), and its bound sum |x||w| + |b| + |res| */
static void reference(const conv_desc *d, int n, const float *x, const float *w, const float *b, const float *res,
                      float *ref, float *bound) {
    conv_desc q = *d;
    q.act = ACT_NONE;
    const size_t xn = (size_t)n * d->h * d->w * d->cin, wn = (size_t)d->cout * 9 * d->cin;
    const size_t yn = (size_t)n * d->oh * d->ow * d->cout;
    float *ax = absolute(x, xn), *aw = absolute(w, wn), *ab = b ? absolute(b, (size_t)d->cout) : NULL;
    conv2d_ref_forward(&q, n, x, w, b, ref);
    conv2d_ref_forward(&q, n, ax, aw, ab, bound);
    for (size_t i = 0; i < yn; i++) {
        ref[i] = act_value(d->act, ref[i] + (res ? res[i] : 0.0f));
        bound[i] += res ? fabsf(res[i]) : 0.0f;
    }
    free(ax), free(aw), free(ab);
}

/* shape t at batch n with tile m: 1 thread against the reference, 2 threads bitwise the same,
 * the residual in place bitwise the same */
static void run_shape(const shape *t, int m, int n) {
    conv_desc d = {.h = t->h, .w = t->w, .cin = t->cin, .cout = t->cout, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                   .pt = t->pt, .pb = t->pb, .pl = t->pl, .pr = t->pr, .groups = 1, .act = t->act};
    if (!check(conv_desc_init(&d) == 0 && conv2d_winograd_takes(&d), "shape accepted")) return;
    const size_t xn = (size_t)n * d.h * d.w * d.cin, wn = (size_t)d.cout * 9 * d.cin;
    const size_t yn = (size_t)n * d.oh * d.ow * d.cout, un = conv2d_winograd_weights_size(&d, m);
    float *x = filled(xn, 1), *w = filled(wn, 2), *b = t->bias ? filled((size_t)d.cout, 3) : NULL;
    float *res = t->res ? filled(yn, 4) : NULL, *u = malloc(sizeof(float) * un);
    float *y = malloc(sizeof(float) * yn), *y2 = malloc(sizeof(float) * yn), *ref = malloc(sizeof(float) * yn),
          *bound = malloc(sizeof(float) * yn);
    char what[160];
    snprintf(what, sizeof what, "F(%dx%d) %dx%dx%d -> %d pad %d,%d,%d,%d%s%s%s, batch %d", m, m, t->h, t->w, t->cin,
             t->cout, t->pt, t->pb, t->pl, t->pr, b ? " bias" : "", res ? " + residual" : "",
             t->act == ACT_RELU ? " relu" : t->act == ACT_RELU6 ? " relu6" : "", n);
    if (check(x && w && u && y && y2 && ref && bound && (!t->bias || b) && (!t->res || res), "%s: tensors", what)) {
        conv2d_winograd_pack(&d, m, w, u);
        reference(&d, n, x, w, b, res, ref, bound);
        float *scratch[2] = {NULL, NULL};
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            const size_t sz = conv2d_winograd_scratch(&d, m, n);
            scratch[th - 1] = sn_alloc(sizeof(float) * sz, "scratch");
            float *out = th == 1 ? y : y2;
            check(sz > 0 && scratch[th - 1] &&
                      conv2d_winograd_forward(&d, m, n, x, u, b, res, out, scratch[th - 1]) == 0,
                  "%s, %d threads: ran", what, th);
        }
        const double e = max_rel_error(y, ref, bound, yn);
        check(e <= TOL[m], "%s: max |y - ref| / sum |x||w| = %.3g (<= %.0e)", what, e, TOL[m]);
        check(!memcmp(y, y2, sizeof(float) * yn), "%s: 2 threads give bitwise the 1-thread output", what);
        if (res) { /* the residual in y itself */
            memcpy(y2, res, sizeof(float) * yn);
            check(conv2d_winograd_forward(&d, m, n, x, u, b, y2, y2, scratch[1]) == 0 &&
                      !memcmp(y, y2, sizeof(float) * yn),
                  "%s: the residual in place gives bitwise the same output", what);
        }
        sn_free(scratch[0]), sn_free(scratch[1]);
    }
    omp_set_num_threads(2);
    free(x), free(w), free(b), free(res), free(u), free(y), free(y2), free(ref), free(bound);
}

static void run_all(const shape *s, size_t cnt, int m) {
    for (size_t k = 0; k < cnt; k++)
        for (int n = 1; n <= 3; n += 2) run_shape(&s[k], m, n);
}

static void case_f2_small(void) { run_all(small, sizeof small / sizeof small[0], 2); }
static void case_f4_small(void) { run_all(small, sizeof small / sizeof small[0], 4); }
static void case_f2_large(void) { run_all(large, sizeof large / sizeof large[0], 2); }
static void case_f4_large(void) { run_all(large, sizeof large / sizeof large[0], 4); }

/* the backward data pass of shape t (its bias, residual and activation unused) on tile m as
 * conv2d_winograd_backward_data_desc's convolution, accumulating onto dx0, against the reference
 * conv2d_ref_backward_data onto dx0; bound sum |dy||w| + |dx0|, the same tolerance */
static void run_backward(const shape *t, int m, int n) {
    conv_desc d = {.h = t->h, .w = t->w, .cin = t->cin, .cout = t->cout, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                   .pt = t->pt, .pb = t->pb, .pl = t->pl, .pr = t->pr, .groups = 1}, bd;
    if (!check(conv_desc_init(&d) == 0 && conv2d_winograd_backward_data_desc(&d, &bd), "backward shape accepted"))
        return;
    const size_t xn = (size_t)n * d.h * d.w * d.cin, wn = (size_t)d.cout * 9 * d.cin;
    const size_t yn = (size_t)n * d.oh * d.ow * d.cout, un = conv2d_winograd_weights_size(&bd, m);
    float *dy = filled(yn, 5), *w = filled(wn, 6), *dx0 = filled(xn, 7), *u = malloc(sizeof(float) * un);
    float *ady = absolute(dy, yn), *aw = absolute(w, wn), *dx = malloc(sizeof(float) * xn);
    float *ref = malloc(sizeof(float) * xn), *bound = malloc(sizeof(float) * xn);
    float *scratch = sn_alloc(sizeof(float) * conv2d_winograd_scratch(&bd, m, n), "scratch");
    if (check(dy && w && dx0 && u && ady && aw && dx && ref && bound && scratch, "tensors")) {
        memcpy(ref, dx0, sizeof(float) * xn);
        conv2d_ref_backward_data(&d, n, dy, w, ref);
        memset(bound, 0, sizeof(float) * xn);
        conv2d_ref_backward_data(&d, n, ady, aw, bound);
        for (size_t i = 0; i < xn; i++) bound[i] += fabsf(dx0[i]);
        memcpy(dx, dx0, sizeof(float) * xn);
        conv2d_winograd_pack_backward_data(&bd, m, w, u);
        const int rc = conv2d_winograd_forward(&bd, m, n, dy, u, NULL, dx, dx, scratch);
        const double e = max_rel_error(dx, ref, bound, xn);
        check(rc == 0 && e <= TOL[m],
              "backward data F(%dx%d) %dx%dx%d -> %d pad %d,%d,%d,%d batch %d: max |dx - ref| / bound = %.3g (<= %.0e)",
              m, m, t->h, t->w, t->cin, t->cout, t->pt, t->pb, t->pl, t->pr, n, e, TOL[m]);
    }
    free(dy), free(w), free(dx0), free(u), free(ady), free(aw), free(dx), free(ref), free(bound), sn_free(scratch);
}

/* the backward data pass, every shape above, on both tiles; a padding over 2 has none */
static void case_backward_data(void) {
    for (int m = 2; m <= 4; m += 2) {
        for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) run_backward(&small[k], m, 3);
        for (size_t k = 0; k < sizeof large / sizeof large[0]; k++) run_backward(&large[k], m, 1);
    }
    conv_desc p3 = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 3, .pb = 1,
                    .pl = 1, .pr = 1, .groups = 1}, bd;
    conv_desc_init(&p3);
    check(!conv2d_winograd_backward_data_desc(&p3, &bd), "padding 3 has no Winograd backward data pass");
}

/* shapes and tiles these kernels do not run are refused, with an error and nothing written */
static void case_refused(void) {
    conv_desc s2 = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .pt = 1, .pb = 1,
                    .pl = 1, .pr = 1, .groups = 1};
    conv_desc k5 = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .groups = 1};
    conv_desc g2 = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .groups = 2};
    conv_desc ok = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .groups = 1};
    conv_desc_init(&s2), conv_desc_init(&k5), conv_desc_init(&g2), conv_desc_init(&ok);
    check(!conv2d_winograd_takes(&s2) && conv2d_winograd_scratch(&s2, 2, 1) == 0 &&
              conv2d_winograd_forward(&s2, 2, 1, NULL, NULL, NULL, NULL, NULL, NULL) < 0,
          "stride 2 is refused: %s", sn_last_error());
    check(!conv2d_winograd_takes(&k5) && !conv2d_winograd_takes(&g2), "a 5x5 kernel and 2 groups are refused");
    check(conv2d_winograd_takes(&ok) && conv2d_winograd_scratch(&ok, 3, 1) == 0 &&
              conv2d_winograd_forward(&ok, 3, 1, NULL, NULL, NULL, NULL, NULL, NULL) < 0,
          "tile 3 is refused: %s", sn_last_error());
}

static const test_case cases[] = {
    {"f2_small", case_f2_small}, {"f4_small", case_f4_small}, {"f2_large", case_f2_large},
    {"f4_large", case_f4_large}, {"backward_data", case_backward_data}, {"refused", case_refused},
};
TEST_MAIN(cases)
