/* test_depthwise.c - the depthwise backend (conv_depthwise.c, and the vector kernels of
 * conv_depthwise_vec.c it runs for 3x3 and 5x5, stride 1 and 2) called alone, against the
 * reference kernels (conv_ref.c) and the PyTorch fixtures: stride 1/2, symmetric and TF-SAME
 * asymmetric padding, padding wider than the kernel, images narrower than the kernel, odd widths
 * and heights, channel counts that are not a multiple of the vector width, batch > 1, the fused
 * activation, backward-data accumulating (+=) and overwriting (_set, with the activation mask),
 * backward-weights with and without the bias gradient, and results that do not depend on the
 * thread count (forward, backward-data) or do only through the partial sums (backward-weights).
 *
 * Tolerance: check_close (max|err| <= rtol * max|ref|) with rtol 1e-5, as test_conv.c's fast vs
 * ref: the kernels sum in float32, the reference in double; a weight gradient sums n*oh*ow (<= a
 * few hundred here) products per tap, so the float32 error stays below ~1e-5 of the largest.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/conv_backend.h"
#include "kernels/conv_depthwise_vec.h"

#define RT 1e-5f

/* a depthwise descriptor: h x w x c, k x k, stride s, padding top/bottom/left/right */
static conv_desc dwd(int h, int w, int c, int k, int s, int pt, int pb, int pl, int pr) {
    return (conv_desc){.h = h, .w = w, .cin = c, .cout = c, .kh = k, .kw = k, .sh = s, .sw = s, .pt = pt, .pb = pb,
                       .pl = pl, .pr = pr, .groups = c};
}
/* TF 'SAME' padding of a depthwise layer (asymmetric on stride 2) */
static conv_desc dwd_same(int h, int w, int c, int k, int s) {
    conv_desc d = dwd(h, w, c, k, s, 0, 0, 0, 0);
    conv_same_padding(h, k, s, &d.pt, &d.pb);
    conv_same_padding(w, k, s, &d.pl, &d.pr);
    return d;
}

static float *frand(size_t n, unsigned long long seed, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) abort();
    fill_uniform(p, n, seed);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}

/* every pass of the depthwise backend against the reference on one shape */
static void vs_ref(const char *nm, conv_desc d, int n) {
    if (!check(conv_desc_init(&d) == 0, "%s: desc init", nm)) return;
    const size_t X = (size_t)n * d.h * d.w * d.cin, Y = (size_t)n * d.oh * d.ow * d.cout;
    const size_t Wn = (size_t)d.cout * d.kh * d.kw, C = (size_t)d.cout;
    float *x = frand(X, 1, 1), *w = frand(Wn, 2, 1.0f / d.kh), *b = frand(C, 3, 1), *dy = frand(Y, 4, 1);
    float *y1 = frand(Y, 5, 1), *y2 = frand(Y, 5, 1);
    float *dx1 = frand(X, 6, 1), *dx2 = frand(X, 6, 1), *dw1 = frand(Wn, 7, 1), *dw2 = frand(Wn, 7, 1);
    float *db1 = frand(C, 8, 1), *db2 = frand(C, 8, 1);
    char what[200];
    snprintf(what, sizeof what, "%s (n %d %dx%d c%d k%d s%d pad %d %d %d %d -> %dx%d)", nm, n, d.h, d.w, d.cin, d.kh,
             d.sh, d.pt, d.pb, d.pl, d.pr, d.oh, d.ow);
    /* forward with bias, and without */
    int took = conv2d_depthwise_forward(&d, n, x, w, b, y1) == n;
    conv2d_ref_forward(&d, n, x, w, b, y2);
    check(took && check_close("forward + bias", y1, y2, Y, RT, 0), "%s: forward + bias", what);
    took = conv2d_depthwise_forward(&d, n, x, w, NULL, y1) == n;
    conv2d_ref_forward(&d, n, x, w, NULL, y2);
    check(took && check_close("forward", y1, y2, Y, RT, 0), "%s: forward, no bias", what);
    /* backward-data: += into random contents, and = over garbage */
    took = conv2d_depthwise_backward_data(&d, n, dy, w, dx1) == n;
    conv2d_ref_backward_data(&d, n, dy, w, dx2);
    check(took && check_close("backward data +=", dx1, dx2, X, RT, 0), "%s: backward data (+=)", what);
    fill_uniform(dx1, X, 9);
    memset(dx2, 0, sizeof(float) * X);
    took = conv2d_depthwise_backward_data_set(&d, n, dy, w, dx1, ACT_NONE, NULL) == n;
    conv2d_ref_backward_data(&d, n, dy, w, dx2);
    check(took && check_close("backward data =", dx1, dx2, X, RT, 0), "%s: backward data (=, _set)", what);
    /* backward-weights: both, then the bias alone, then the weights alone (each += ) */
    took = conv2d_depthwise_backward_weights(&d, n, x, dy, dw1, db1) == n;
    conv2d_ref_backward_weights(&d, n, x, dy, dw2, db2);
    check(took && check_close("dw +=", dw1, dw2, Wn, RT, 0) && check_close("db +=", db1, db2, C, RT, 0),
          "%s: backward weights and bias (+=)", what);
    took = conv2d_depthwise_backward_weights(&d, n, x, dy, NULL, db1) == n;
    took &= conv2d_depthwise_backward_weights(&d, n, x, dy, dw1, NULL) == n;
    conv2d_ref_backward_weights(&d, n, x, dy, dw2, db2);
    check(took && check_close("dw alone", dw1, dw2, Wn, RT, 0) && check_close("db alone", db1, db2, C, RT, 0),
          "%s: backward weights alone, bias alone (NULL skips the other)", what);
    free(x), free(w), free(b), free(dy), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2), free(db1),
        free(db2);
}

/* 3x3 and 5x5, stride 1 and 2, on awkward shapes */
static void shapes_k(int k) {
    char nm[80];
    const int cs[] = {8, 13, 40, 100}; /* one vector, a tail alone, full vectors + a tail, several + a tail */
    for (int i = 0; i < 4; i++) {
        for (int s = 1; s <= 2; s++) {
            snprintf(nm, sizeof nm, "%dx%d s%d c%d symmetric", k, k, s, cs[i]);
            vs_ref(nm, dwd(11, 23, cs[i], k, s, k / 2, k / 2, k / 2, k / 2), 3);
            snprintf(nm, sizeof nm, "%dx%d s%d c%d TF-SAME", k, k, s, cs[i]);
            vs_ref(nm, dwd_same(13 - s, 20 + i, cs[i], k, s), 2);
        }
    }
    snprintf(nm, sizeof nm, "%dx%d s2 odd pads (left 1, right 0)", k, k);
    vs_ref(nm, dwd(9, 17, 24, k, 2, 1, 2, 1, 0), 2);
    snprintf(nm, sizeof nm, "%dx%d s1 no padding", k, k);
    vs_ref(nm, dwd(12, 31, 16, k, 1, 0, 0, 0, 0), 2);
    snprintf(nm, sizeof nm, "%dx%d s1 padding wider than the kernel", k, k);
    vs_ref(nm, dwd(6, 7, 12, k, 1, k + 1, k, k, k + 1), 2);
    snprintf(nm, sizeof nm, "%dx%d s2 image narrower than the kernel", k, k);
    vs_ref(nm, dwd_same(2, 3, 20, k, 2), 3);
    snprintf(nm, sizeof nm, "%dx%d s1 one column", k, k);
    vs_ref(nm, dwd(5, 1, 9, k, 1, k / 2, k / 2, k / 2, k / 2), 4);
    snprintf(nm, sizeof nm, "%dx%d s2 batch 1 wide row", k, k);
    vs_ref(nm, dwd_same(7, 67, 48, k, 2), 1);
}
static void shapes3(void) { shapes_k(3); }
static void shapes5(void) { shapes_k(5); }

/* the shapes of EfficientNet-Lite0's depthwise layers (at a small input) and MobileNetV2's */
static void network_layers(void) {
    vs_ref("lite0 5x5 s2 144 @16 (TF-SAME)", dwd_same(16, 16, 144, 5, 2), 2);
    vs_ref("lite0 5x5 s1 240 @8", dwd_same(8, 8, 240, 5, 1), 2);
    vs_ref("lite0 5x5 s2 672 @7 (TF-SAME)", dwd_same(7, 7, 672, 5, 2), 2);
    vs_ref("lite0 5x5 s1 1152 @4", dwd_same(4, 4, 1152, 5, 1), 2);
    vs_ref("lite0 3x3 s2 96 @17 (TF-SAME)", dwd_same(17, 17, 96, 3, 2), 2);
    vs_ref("mv2 3x3 s1 144 @9", dwd(9, 9, 144, 3, 1, 1, 1, 1, 1), 2);
}

/* the vector forward's blocking: channel counts of a pair of vector blocks + a single one + a tail
 * (29) and a pair + a tail (21), widths around every interior-column count of a block (5x5 stride
 * 1 switches kernels at 8 interior columns: widths 11 and 12), symmetric and TF-SAME padding */
static void channel_blocks(void) {
    char nm[80];
    const int cs[] = {21, 29}, ws[] = {4, 5, 9, 11, 12, 13, 18};
    for (int k = 3; k <= 5; k += 2)
        for (int s = 1; s <= 2; s++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 7; j++) {
                    snprintf(nm, sizeof nm, "%dx%d s%d c%d w%d symmetric", k, k, s, cs[i], ws[j]);
                    vs_ref(nm, dwd(6, ws[j], cs[i], k, s, k / 2, k / 2, k / 2, k / 2), 1);
                    snprintf(nm, sizeof nm, "%dx%d s%d c%d w%d TF-SAME", k, k, s, cs[i], ws[j]);
                    vs_ref(nm, dwd_same(7, ws[j], cs[i], k, s), 1);
                }
}

/* the fused activation is bitwise the separate pass; the masked _set bitwise _set + act_mask */
static void fused(void) {
    const conv_desc ds[] = {dwd_same(9, 13, 40, 5, 1), dwd_same(10, 11, 21, 5, 2), dwd_same(9, 10, 19, 3, 2)};
    for (int i = 0; i < 3; i++) {
        conv_desc d = ds[i];
        const int n = 2;
        if (!check(conv_desc_init(&d) == 0, "fused: desc init")) continue;
        const size_t X = (size_t)n * d.h * d.w * d.cin, Y = (size_t)n * d.oh * d.ow * d.cout, Wn = (size_t)d.cout * d.kh * d.kw;
        float *x = frand(X, 11, 8), *w = frand(Wn, 12, 1), *b = frand(d.cout, 13, 1), *dy = frand(Y, 14, 1);
        float *y1 = frand(Y, 15, 1), *y2 = frand(Y, 15, 1), *dx1 = frand(X, 16, 1), *dx2 = frand(X, 17, 1);
        for (sn_act act = ACT_RELU; act <= ACT_RELU6; act++) {
            conv_desc da = d;
            da.act = act;
            int ok = conv2d_depthwise_forward(&da, n, x, w, b, y1) == n && conv2d_depthwise_forward(&d, n, x, w, b, y2) == n;
            act_apply(act, (long)Y, y2);
            int above = 0, zero = 0;
            for (size_t e = 0; e < Y; e++) above += y2[e] >= 6, zero += y2[e] == 0;
            check(ok && !memcmp(y1, y2, sizeof(float) * Y) && zero > 0 && (act == ACT_RELU || above > 0),
                  "fused %s k%d s%d c%d: forward with the activation bitwise the separate pass (%d zeros, %d at 6+)",
                  act == ACT_RELU ? "ReLU" : "ReLU6", d.kh, d.sh, d.cin, zero, above);
            float *xa = frand(X, 18, 1);
            for (size_t e = 0; e < X; e++) xa[e] = 8 * x[e] > 6 ? 6 : x[e] > 0 ? 8 * x[e] : 0;
            ok = conv2d_depthwise_backward_data_set(&d, n, dy, w, dx1, act, xa) == n;
            ok &= conv2d_depthwise_backward_data_set(&d, n, dy, w, dx2, ACT_NONE, NULL) == n;
            act_mask((long)X, act, xa, dx2);
            check(ok && !memcmp(dx1, dx2, sizeof(float) * X),
                  "fused %s k%d s%d c%d: masked backward data (_set) bitwise _set then act_mask",
                  act == ACT_RELU ? "ReLU" : "ReLU6", d.kh, d.sh, d.cin);
            free(xa);
        }
        free(x), free(w), free(b), free(dy), free(y1), free(y2), free(dx1), free(dx2);
    }
}

/* forward and backward-data compute each element in one fixed order: 1 and 2 threads agree
 * bitwise; backward-weights is bitwise repeatable for a thread count */
static void threads(void) {
    conv_desc d = dwd_same(14, 15, 72, 5, 2);
    const int n = 3;
    if (!check(conv_desc_init(&d) == 0, "threads: desc init")) return;
    const size_t X = (size_t)n * d.h * d.w * d.cin, Y = (size_t)n * d.oh * d.ow * d.cout, Wn = (size_t)d.cout * 25;
    float *x = frand(X, 21, 1), *w = frand(Wn, 22, 1), *dy = frand(Y, 23, 1);
    float *y[2], *dx[2], *dw[2];
    int nt0 = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        y[t] = frand(Y, 24, 1), dx[t] = frand(X, 25, 1), dw[t] = frand(Wn, 26, 1);
        omp_set_num_threads(t + 1);
        conv2d_depthwise_forward(&d, n, x, w, NULL, y[t]);
        conv2d_depthwise_backward_data(&d, n, dy, w, dx[t]);
    }
    omp_set_num_threads(nt0);
    check(!memcmp(y[0], y[1], sizeof(float) * Y) && !memcmp(dx[0], dx[1], sizeof(float) * X),
          "forward and backward data: 1 and 2 threads give bitwise the same results");
    for (int t = 0; t < 2; t++) conv2d_depthwise_backward_weights(&d, n, x, dy, dw[t], NULL);
    check(!memcmp(dw[0], dw[1], sizeof(float) * Wn), "backward weights: bitwise repeatable (%d threads)", nt0);
    for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]), free(dw[t]);
    free(x), free(w), free(dy);
}

/* the vector kernels run these shapes where the CPU has them (so the cases above test them) */
static void vector_path(void) {
#ifdef DW_VEC
    conv_desc ok[] = {dwd(8, 8, 13, 3, 1, 1, 1, 1, 1), dwd(8, 8, 13, 5, 2, 1, 2, 1, 2)};
    conv_desc no[] = {dwd(8, 8, 13, 7, 1, 3, 3, 3, 3), dwd(8, 8, 13, 3, 3, 1, 1, 1, 1)};
    no[1].sw = 2;
    int good = 1;
    for (int i = 0; i < 2; i++) good &= conv_desc_init(&ok[i]) == 0 && dwv_takes(&ok[i]);
    for (int i = 0; i < 2; i++) good &= conv_desc_init(&no[i]) == 0 && !dwv_takes(&no[i]);
    check(good, "vector kernels (%s): take 3x3 and 5x5 at stride 1 and 2, decline 7x7 and unequal strides",
#ifdef __AVX512F__
          "AVX-512"
#else
          "AVX2+FMA"
#endif
    );
#elif defined(__x86_64__)
    note("no AVX2+FMA at compile time: the depthwise backend runs its plain loops");
    check(1, "vector kernels not compiled");
#endif
}

/* the depthwise cases of the PyTorch fixtures (layers.safetensors), on the depthwise backend alone */
static void pytorch(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "open layers.safetensors")) return;
    char names[64][64];
    int nc = kfix_list(kfix_meta(&k, "conv"), names, 64), ran = 0, five = 0;
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci], *m;
        char key[128];
        snprintf(key, sizeof key, "conv.%s", nm);
        int n, bias;
        conv_desc d = {0};
        if (!(m = kfix_meta(&k, key)) ||
            sscanf(m, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d", &n, &d.h, &d.w, &d.cin, &d.cout, &d.kh, &d.kw,
                   &d.sh, &d.sw, &d.pt, &d.pb, &d.pl, &d.pr, &d.groups, &bias) != 15 || conv_desc_init(&d)) {
            check(0, "conv %s: metadata", nm);
            continue;
        }
        if (!conv_is_depthwise(&d)) continue;
        const size_t X = (size_t)n * d.h * d.w * d.cin, Y = (size_t)n * d.oh * d.ow * d.cout;
        const size_t Wn = (size_t)d.cout * d.kh * d.kw;
        float *x = kfix_getf(&k, NULL, "conv.%s.x", nm), *w = kfix_getf(&k, NULL, "conv.%s.w", nm);
        float *y = kfix_getf(&k, NULL, "conv.%s.y", nm), *dy = kfix_getf(&k, NULL, "conv.%s.dy", nm);
        float *dx = kfix_getf(&k, NULL, "conv.%s.dx", nm), *dw = kfix_getf(&k, NULL, "conv.%s.dw", nm);
        float *b = bias ? kfix_getf(&k, NULL, "conv.%s.b", nm) : NULL, *db = bias ? kfix_getf(&k, NULL, "conv.%s.db", nm) : NULL;
        if (!check(x && w && y && dy && dx && dw && (!bias || (b && db)), "conv %s: tensors", nm)) continue;
        float *gy = frand(Y, 31, 1), *gdx = frand(X, 32, 1), *gdw = calloc(Wn, sizeof(float)), *gdb = calloc(d.cout, 4);
        int took = conv2d_depthwise_forward(&d, n, x, w, b, gy) == n;
        took &= conv2d_depthwise_backward_data_set(&d, n, dy, w, gdx, ACT_NONE, NULL) == n;
        took &= conv2d_depthwise_backward_weights(&d, n, x, dy, gdw, bias ? gdb : NULL) == n;
        check(took && check_close("y", gy, y, Y, RT, 0) && check_close("dx", gdx, dx, X, RT, 0) &&
                  check_close("dw", gdw, dw, Wn, RT, 0) && (!bias || check_close("db", gdb, db, d.cout, RT, 0)),
              "depthwise backend vs PyTorch: %s (k%d s%d pad %d %d %d %d c%d->%d n%d)", nm, d.kh, d.sh, d.pt, d.pb,
              d.pl, d.pr, d.cin, d.cout, n);
        ran++, five += d.kh == 5;
        free(gy), free(gdx), free(gdw), free(gdb);
    }
    check(ran >= 5 && five >= 1, "%d depthwise fixture cases (%d of them 5x5)", ran, five);
    kfix_close(&k);
}

static const test_case cases[] = {
    {"shapes-3x3", shapes3}, {"shapes-5x5", shapes5},       {"network-layers", network_layers},
    {"channel-blocks", channel_blocks}, {"fused", fused}, {"threads", threads},
    {"vector-path", vector_path}, {"pytorch", pytorch},
};
TEST_MAIN(cases)
