/* test_dwpw.c - the inverted-residual block in one pass (kernels/conv_dwpw.h) against the plain
 * composition of the reference convolutions (conv2d_dwpw_forward_ref, double sums), and against
 * the expansion run apart (conv2d_forward) followed by the fused depthwise + 1x1 pair, with the
 * 1x1 weights packed (the tile kernel where the width is a multiple of 8) and not (gemm_sgemm): kernel
 * sizes 3 and 5, strides 1 and 2, symmetric and TensorFlow SAME (asymmetric) padding, odd sizes,
 * expansion widths that are no multiple of the vector width, with and without residual and
 * activations, batch 1 and 3, on 1 and 2 threads (an image's rows split between threads), images
 * tall enough for several blocks of rows (the rows of e shared by consecutive blocks kept) and
 * small enough to run whole by both threads; with the tile kernel, 2 threads against 1 bitwise;
 * and the last 1x1 convolution + global average pool in one pass against the reference.
 *
 * Tolerance: max |got - ref| <= 1e-5 * max |ref| (float sums of at most 160 terms per 1x1 part
 * against double ones; the worst measured is printed).  A second call on the same thread count
 * gives bitwise the same output. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/conv_dwpw.h"

#define RTOL 1e-5f
/* whether this build runs the tile kernel (AVX2 and FMA): conv2d_pw_gap_takes */
#if defined(__AVX2__) && defined(__FMA__)
#define DWPW_TAKES 1
#else
#define DWPW_TAKES 0
#endif

/* one block shape: input h x w x cin, expansion to ce channels (0: none), depthwise k x k stride
 * s (same: TensorFlow SAME padding, else k/2 on every side), projection to co, residual */
typedef struct {
    int h, w, cin, ce, co, k, s, same, res;
    sn_act ae, ad, ap;
} shape;

static const shape shapes[] = {
    {9, 7, 16, 0, 8, 3, 1, 0, 1, ACT_NONE, ACT_RELU6, ACT_NONE},
    {17, 13, 24, 0, 12, 3, 2, 1, 0, ACT_NONE, ACT_RELU6, ACT_NONE},
    {10, 11, 40, 0, 16, 5, 2, 1, 0, ACT_NONE, ACT_RELU, ACT_RELU},
    {7, 7, 96, 0, 24, 5, 1, 1, 1, ACT_NONE, ACT_NONE, ACT_RELU6},
    {13, 11, 8, 36, 8, 3, 1, 0, 1, ACT_RELU6, ACT_RELU6, ACT_NONE},
    {16, 14, 12, 40, 20, 3, 2, 1, 0, ACT_RELU6, ACT_RELU6, ACT_NONE},
    {14, 15, 16, 52, 16, 5, 2, 1, 0, ACT_RELU, ACT_RELU, ACT_NONE},
    {15, 9, 24, 96, 24, 5, 1, 1, 1, ACT_RELU6, ACT_RELU6, ACT_NONE},
    {57, 45, 24, 144, 24, 3, 1, 0, 1, ACT_RELU6, ACT_RELU6, ACT_NONE},
    {58, 53, 16, 96, 24, 3, 2, 1, 0, ACT_RELU6, ACT_RELU6, ACT_NONE},
    {30, 31, 40, 160, 40, 5, 1, 1, 1, ACT_NONE, ACT_RELU6, ACT_RELU},
    {7, 7, 160, 200, 32, 3, 1, 0, 0, ACT_RELU6, ACT_RELU6, ACT_NONE},
};

/* the descriptors of shape t: ex (when t->ce), dw, pw */
static void descs(const shape *t, conv_desc *ex, conv_desc *dw, conv_desc *pw) {
    const int c = t->ce ? t->ce : t->cin;
    *ex = (conv_desc){.h = t->h, .w = t->w, .cin = t->cin, .cout = c, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .groups = 1,
                      .act = t->ae};
    *dw = (conv_desc){.h = t->h, .w = t->w, .cin = c, .cout = c, .kh = t->k, .kw = t->k, .sh = t->s, .sw = t->s,
                      .groups = c, .act = t->ad};
    if (t->same) {
        conv_same_padding(dw->h, dw->kh, dw->sh, &dw->pt, &dw->pb);
        conv_same_padding(dw->w, dw->kw, dw->sw, &dw->pl, &dw->pr);
    } else {
        dw->pt = dw->pb = dw->pl = dw->pr = t->k / 2;
    }
    conv_desc_init(ex);
    conv_desc_init(dw);
    *pw = (conv_desc){.h = dw->oh, .w = dw->ow, .cin = c, .cout = t->co, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                      .groups = 1, .act = t->ap};
    conv_desc_init(pw);
}

/* the tensors of one shape and batch */
typedef struct {
    float *x, *we, *be, *wd, *wr, *bd, *wp, *bp, *res, *e, *y, *y2, *ref, *scratch, *wep, *wpp;
    size_t xn, en, yn;
} tensors;

static bool tensors_make(tensors *a, const shape *t, const conv_desc *dw, const conv_desc *pw, int n) {
    const size_t c = (size_t)dw->cin, k2 = (size_t)t->k * t->k;
    memset(a, 0, sizeof *a);
    a->xn = (size_t)n * t->h * t->w * t->cin, a->en = (size_t)n * t->h * t->w * c;
    a->yn = (size_t)n * pw->oh * pw->ow * pw->cout;
    a->x = malloc(sizeof(float) * a->xn), a->we = malloc(sizeof(float) * c * t->cin), a->be = malloc(sizeof(float) * c);
    a->wd = malloc(sizeof(float) * k2 * c), a->bd = malloc(sizeof(float) * c);
    a->wp = malloc(sizeof(float) * c * pw->cout), a->bp = malloc(sizeof(float) * pw->cout);
    a->res = malloc(sizeof(float) * a->yn), a->e = malloc(sizeof(float) * a->en);
    a->y = malloc(sizeof(float) * a->yn), a->y2 = malloc(sizeof(float) * a->yn), a->ref = malloc(sizeof(float) * a->yn);
    a->wep = malloc(sizeof(float) * c * t->cin), a->wpp = malloc(sizeof(float) * c * pw->cout);
    if (!a->x || !a->we || !a->be || !a->wd || !a->bd || !a->wp || !a->bp || !a->res || !a->e || !a->y || !a->y2 ||
        !a->ref || !a->wep || !a->wpp)
        return false;
    fill_uniform(a->x, a->xn, 1), fill_uniform(a->we, c * t->cin, 2), fill_uniform(a->be, c, 3);
    fill_uniform(a->wd, k2 * c, 4), fill_uniform(a->bd, c, 5), fill_uniform(a->wp, c * pw->cout, 6);
    fill_uniform(a->bp, pw->cout, 7), fill_uniform(a->res, a->yn, 8);
    conv2d_dwpw_pack_1x1((int)c, t->cin, a->we, a->wep);
    conv2d_dwpw_pack_1x1(pw->cout, (int)c, a->wp, a->wpp);
    a->wr = conv2d_depthwise_repack(dw, a->wd);
    return a->wr != NULL;
}

static void tensors_free(tensors *a) {
    free(a->x), free(a->we), free(a->be), free(a->wd), free(a->bd), free(a->wp), free(a->bp), free(a->res);
    free(a->e), free(a->y), free(a->y2), free(a->ref), sn_free(a->wr), free(a->scratch), free(a->wep), free(a->wpp);
}

/* shape t at batch n on the current thread count: fused = reference, = twice the same, = the
 * expansion apart + the fused pair */
static void run_shape(const shape *t, int n) {
    conv_desc ex, dw, pw;
    descs(t, &ex, &dw, &pw);
    tensors a;
    if (!check(tensors_make(&a, t, &dw, &pw, n), "tensors allocated")) {
        tensors_free(&a);
        return;
    }
    const float *r = t->res ? a.res : NULL;
    conv_dwpw b = {.ex = t->ce ? &ex : NULL, .dw = &dw, .pw = &pw, .we = a.we, .be = a.be, .wd = a.wr, .bd = a.bd,
                   .wp = a.wp, .bp = a.bp, .wep = a.wep, .wpp = a.wpp};
    const size_t sz = conv2d_dwpw_scratch(&b, n);
    a.scratch = malloc(sizeof(float) * (sz ? sz : 1));
    char what[160];
    snprintf(what, sizeof what, "%dx%dx%d%s%d k%d s%d%s -> %d%s, batch %d, %d threads", t->h, t->w, t->cin,
             t->ce ? " -> " : "", t->ce, t->k, t->s, t->same ? " SAME" : "", t->co, r ? " + residual" : "", n,
             omp_get_max_threads());
    conv_dwpw bref = b;
    bref.wd = a.wd;
    if (check(sz > 0 && a.scratch && conv2d_dwpw_forward(&b, n, a.x, r, a.y, a.scratch) == 0 &&
                  conv2d_dwpw_forward_ref(&bref, n, a.x, r, a.ref) == 0,
              "%s: ran", what))
        check_close(what, a.y, a.ref, a.yn, RTOL, 0);
    check(conv2d_dwpw_forward(&b, n, a.x, r, a.y2, a.scratch) == 0 && !memcmp(a.y, a.y2, sizeof(float) * a.yn),
          "%s: a second call gives bitwise the same output", what);
    conv_dwpw plain = b; /* the 1x1 parts on gemm_sgemm */
    plain.wep = plain.wpp = NULL;
    char w1[200];
    snprintf(w1, sizeof w1, "%s, weights not packed", what);
    if (check(conv2d_dwpw_forward(&plain, n, a.x, r, a.y2, a.scratch) == 0, "%s: ran", w1))
        check_close(w1, a.y2, a.ref, a.yn, RTOL, 0);
    if (t->ce) { /* the expansion apart, then the pair */
        conv2d_forward(&ex, n, a.x, a.we, a.be, a.e);
        conv_dwpw pair = b;
        pair.ex = NULL;
        char w2[200];
        snprintf(w2, sizeof w2, "%s = expansion apart + fused pair", what);
        if (check(conv2d_dwpw_forward(&pair, n, a.e, r, a.y2, a.scratch) == 0, "%s: ran", w2))
            check_close(w2, a.y, a.y2, a.yn, RTOL, 0);
    }
    tensors_free(&a);
}

static void run_shapes(int first, int last) {
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (int k = first; k <= last; k++)
            for (int n = 1; n <= 3; n += 2) run_shape(&shapes[k], n);
    }
    omp_set_num_threads(2);
}

static void case_pair(void) { run_shapes(0, 3); }
static void case_block(void) { run_shapes(4, 7); }
static void case_block_tall(void) { run_shapes(8, 11); }

/* with packed weights and widths that are multiples of 8 (the tile kernel), batch 1 on 2 threads
 * (an image split by rows, or run whole by both threads) is bitwise the output of 1 thread */
static void case_threads_bitwise(void) {
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *t = &shapes[k];
        if ((t->ce ? t->ce : t->cin) % 8 || t->co % 8 || t->cin % 8) continue;
        conv_desc ex, dw, pw;
        descs(t, &ex, &dw, &pw);
        tensors a;
        if (!check(tensors_make(&a, t, &dw, &pw, 1), "tensors allocated")) {
            tensors_free(&a);
            continue;
        }
        const conv_dwpw b = {.ex = t->ce ? &ex : NULL, .dw = &dw, .pw = &pw, .we = a.we, .be = a.be, .wd = a.wr,
                             .bd = a.bd, .wp = a.wp, .bp = a.bp, .wep = a.wep, .wpp = a.wpp};
        const float *r = t->res ? a.res : NULL;
        omp_set_num_threads(1);
        size_t sz = conv2d_dwpw_scratch(&b, 1);
        omp_set_num_threads(2);
        if (conv2d_dwpw_scratch(&b, 1) > sz) sz = conv2d_dwpw_scratch(&b, 1);
        a.scratch = malloc(sizeof(float) * (sz ? sz : 1));
        omp_set_num_threads(1);
        const int r1 = a.scratch ? conv2d_dwpw_forward(&b, 1, a.x, r, a.y, a.scratch) : -1;
        omp_set_num_threads(2);
        const int r2 = a.scratch ? conv2d_dwpw_forward(&b, 1, a.x, r, a.y2, a.scratch) : -1;
        check(r1 == 0 && r2 == 0 && !memcmp(a.y, a.y2, sizeof(float) * a.yn),
              "%dx%dx%d -> %d k%d s%d -> %d: 2 threads give bitwise the output of 1", t->h, t->w, t->cin, t->ce, t->k,
              t->s, t->co);
        tensors_free(&a);
    }
}

/* the last 1x1 convolution + global average pool in one pass (conv2d_pw_gap_forward) against the
 * reference convolution, its activation and a mean in double: panels of 24 and fewer channels,
 * pixels more than one chunk of 48 rows, batch 1 and 3, on 1 and 2 threads (2 bitwise as 1);
 * widths that are no multiple of 8 are refused */
static void case_pw_gap(void) {
    const int shapes_g[4][3] = {{49, 1280, 320}, {7, 40, 20}, {100, 8, 33}, {50, 48, 16}}; /* M, N, K */
    const sn_act acts[4] = {ACT_RELU6, ACT_NONE, ACT_RELU, ACT_RELU6};
    for (int k = 0; k < 4; k++) {
        const int M = shapes_g[k][0], N = shapes_g[k][1], K = shapes_g[k][2], n = 3;
        if (!check(conv2d_pw_gap_takes(N) == DWPW_TAKES, "%d channels: taken (%d)", N, DWPW_TAKES)) continue;
        if (!DWPW_TAKES) continue;
        conv_desc d = {.h = M, .w = 1, .cin = K, .cout = N, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .groups = 1,
                       .act = acts[k]};
        conv_desc_init(&d);
        float *x = malloc(sizeof(float) * (size_t)n * M * K), *w = malloc(sizeof(float) * (size_t)N * K),
              *wp = malloc(sizeof(float) * (size_t)N * K), *b = malloc(sizeof(float) * (size_t)N),
              *c = malloc(sizeof(float) * (size_t)n * M * N), *ref = malloc(sizeof(float) * (size_t)n * N),
              *y = malloc(sizeof(float) * (size_t)n * N), *y2 = malloc(sizeof(float) * (size_t)n * N);
        if (check(x && w && wp && b && c && ref && y && y2, "tensors allocated")) {
            fill_uniform(x, (size_t)n * M * K, 11), fill_uniform(w, (size_t)N * K, 12), fill_uniform(b, (size_t)N, 13);
            conv2d_dwpw_pack_1x1(N, K, w, wp);
            conv2d_ref_forward(&d, n, x, w, b, c);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int m = 0; m < M; m++) s += c[((size_t)i * M + m) * N + j];
                    ref[(size_t)i * N + j] = (float)(s / M);
                }
            for (int nn = 1; nn <= n; nn += 2) {
                omp_set_num_threads(1);
                const int r1 = conv2d_pw_gap_forward(nn, M, N, K, x, wp, b, acts[k], y);
                omp_set_num_threads(2);
                const int r2 = conv2d_pw_gap_forward(nn, M, N, K, x, wp, b, acts[k], y2);
                char what[96];
                snprintf(what, sizeof what, "1x1 %d -> %d on %d pixels + mean, batch %d", K, N, M, nn);
                if (check(r1 == 0 && r2 == 0, "%s: ran", what)) check_close(what, y, ref, (size_t)nn * N, RTOL, 0);
                check(!memcmp(y, y2, sizeof(float) * (size_t)nn * N), "%s: 2 threads bitwise as 1", what);
            }
        }
        free(x), free(w), free(wp), free(b), free(c), free(ref), free(y), free(y2);
    }
    float one = 0;
    const int rc = conv2d_pw_gap_forward(1, 1, 12, 1, &one, &one, NULL, ACT_NONE, &one);
    check(!conv2d_pw_gap_takes(12) && rc < 0 && one == 0, "12 channels refused: %s", sn_last_error());
}

/* descriptors that do not chain are refused, with an error and nothing written */
static void case_refused(void) {
    conv_desc a = {.h = 8, .w = 8, .cin = 8, .cout = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                   .pr = 1, .groups = 8};
    conv_desc b = {.h = 8, .w = 8, .cin = 8, .cout = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                   .pr = 1, .groups = 1};
    conv_desc p = {.h = 8, .w = 8, .cin = 8, .cout = 4, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .groups = 1};
    conv_desc e = {.h = 16, .w = 16, .cin = 4, .cout = 8, .kh = 1, .kw = 1, .sh = 2, .sw = 2, .groups = 1};
    conv_desc_init(&a), conv_desc_init(&b), conv_desc_init(&p), conv_desc_init(&e);
    conv_dwpw blk = {.dw = &a, .pw = &b};
    check(!conv2d_dwpw_takes(&a, &b) && conv2d_dwpw_scratch(&blk, 1) == 0 &&
              conv2d_dwpw_forward(&blk, 1, NULL, NULL, NULL, NULL) < 0,
          "a 3x3 second convolution is refused: %s", sn_last_error());
    blk = (conv_dwpw){.ex = &e, .dw = &a, .pw = &p};
    check(conv2d_dwpw_takes(&a, &p) && !conv2d_dwpw_takes_expansion(&e, &a) &&
              conv2d_dwpw_forward(&blk, 1, NULL, NULL, NULL, NULL) < 0,
          "a stride-2 expansion is refused: %s", sn_last_error());
}

static const test_case cases[] = {
    {"pair", case_pair},
    {"block", case_block},
    {"block_tall", case_block_tall},
    {"threads_bitwise", case_threads_bitwise},
    {"pw_gap", case_pw_gap},
    {"refused", case_refused},
};
TEST_MAIN(cases)
