/* test_conv.c - conv2d (dense, strided, 7x7 stem, TF-SAME asymmetric padding, depthwise,
 * channel multiplier, grouped, 1x1) against PyTorch, the dispatcher and each backend alone
 * (conv_backend.h: which shapes each takes or declines) against the reference kernels on awkward
 * shapes, fused activations, finite-difference gradients, the accumulate contract and determinism.
 *
 * Tolerances (check_close: max|err| <= rtol * max|ref|):
 *  - vs PyTorch (float64 oracle on the same float32 inputs): the C kernels accumulate in
 *    float32 (oneDNN's blocked GEMM; direct loops for depthwise).  A dot product of K terms has
 *    rounding error ~ sqrt(K) * 2^-24 * sum|terms| typically and K * 2^-24 at worst; here K <= a
 *    few hundred (reductions over n*oh*ow for dW are <= ~250 terms), i.e. <= ~1e-5 of the
 *    tensor's max in the worst case.  We use rtol 1e-5 (measured errors are printed; they are
 *    ~1e-7..5e-7).  The *_ref kernels accumulate in double: rtol 1e-6.
 *  - fast vs ref on random shapes: same reasoning with K up to ~600: rtol 1e-5.
 *  - Winograd F(4x4,3x3) (oneDNN, 3x3 stride-1 layers with channels a multiple of 16): the input
 *    and output transforms multiply by constants up to ~10 and cancel, so rounding is larger than a
 *    direct sum's (measured 0.7e-6..1.7e-6 of the tensor's max here, vs 0.1e-6..0.8e-6 direct): rtol 2e-5, and the same shapes
 *    with CONV_ALGO_DIRECT must still meet 1e-5.
 *  - finite differences: L = sum(y * r) (computed in double), central difference with h = 1e-2
 *    in float32.  Conv is linear in x and w, so the difference is exact up to rounding of y
 *    (~1e-7 relative) divided by 2h: we require |fd - analytic| <= 1e-2 * max|analytic grad|.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/conv_backend.h"
#include "kernels/eltwise.h"
#include <omp.h>

#define CD(H, W, CI, CO, KH, KW, SH, SW, PT, PB, PL, PR, G) \
    (conv_desc){.h = H, .w = W, .cin = CI, .cout = CO, .kh = KH, .kw = KW, .sh = SH, .sw = SW, .pt = PT, .pb = PB, .pl = PL, .pr = PR, .groups = G}

/* whether oneDNN has a Winograd kernel on this CPU at all (its f32 Winograd is AVX-512 only): a
 * resnet layer forced to CONV_ALGO_WINOGRAD at batch 32 takes it wherever one exists */
static bool winograd_on_this_cpu(void) {
    conv_desc d = CD(56, 56, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    d.algo = CONV_ALGO_WINOGRAD;
    return conv_desc_init(&d) == 0 && conv2d_forward_is_winograd(&d, 32);
}

#define RT_TORCH 1e-5f
#define RT_REF 1e-6f
#define RT_FAST 1e-5f
#define RT_WINO 2e-5f

static float *fzeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *frand(size_t n, unsigned long long seed, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(p, n, seed);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}
static size_t xsz(const conv_desc *d, int n) { return (size_t)n * d->h * d->w * d->cin; }
static size_t ysz(const conv_desc *d, int n) { return (size_t)n * d->oh * d->ow * d->cout; }
static size_t wsz(const conv_desc *d) { return (size_t)d->cout * d->kh * d->kw * (d->cin / d->groups); }

static void fixture_cases(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "conv: open layers.safetensors")) return;
    char names[64][64];
    int nc = kfix_list(kfix_meta(&k, "conv"), names, 64);
    check(nc >= 15, "conv: %d fixture cases listed", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[128];
        snprintf(key, sizeof key, "conv.%s", nm);
        const char *m = kfix_meta(&k, key);
        int n, bias;
        conv_desc d = {0};
        if (!m || sscanf(m, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d", &n, &d.h, &d.w, &d.cin, &d.cout, &d.kh,
                         &d.kw, &d.sh, &d.sw, &d.pt, &d.pb, &d.pl, &d.pr, &d.groups, &bias) != 15) {
            check(0, "conv %s: metadata", nm);
            continue;
        }
        if (!check(conv_desc_init(&d) == 0, "conv %s: desc init", nm)) continue;
        size_t cnt;
        float *x = kfix_getf(&k, &cnt, "conv.%s.x", nm), *w = kfix_getf(&k, NULL, "conv.%s.w", nm);
        float *y = kfix_getf(&k, &cnt, "conv.%s.y", nm);
        if (!x || !w || !y || !check(cnt == ysz(&d, n), "conv %s: output size %zu matches desc", nm, cnt)) continue;
        float *dy = kfix_getf(&k, NULL, "conv.%s.dy", nm), *dx = kfix_getf(&k, NULL, "conv.%s.dx", nm);
        float *dw = kfix_getf(&k, NULL, "conv.%s.dw", nm);
        float *b = bias ? kfix_getf(&k, NULL, "conv.%s.b", nm) : NULL, *db = bias ? kfix_getf(&k, NULL, "conv.%s.db", nm) : NULL;
        float *gy = fzeros(ysz(&d, n)), *gdx = fzeros(xsz(&d, n)), *gdw = fzeros(wsz(&d)), *gdb = fzeros(d.cout);
        char what[160];
        d.algo = CONV_ALGO_WINOGRAD;
        const int wino_possible = conv2d_forward_is_winograd(&d, n);
        for (int algo = CONV_ALGO_DIRECT; algo <= CONV_ALGO_WINOGRAD; algo++) {
            if (algo == CONV_ALGO_WINOGRAD && !wino_possible) break; /* the run above was all there is */
            d.algo = algo;
            int wino = conv2d_forward_is_winograd(&d, n);
            if (algo == CONV_ALGO_DIRECT && !check(!wino, "conv %s: CONV_ALGO_DIRECT never uses Winograd", nm)) continue;
            const char *an = wino ? "Winograd" : "direct";
            float rt = wino ? RT_WINO : RT_TORCH;
            memset(gdx, 0, sizeof(float) * xsz(&d, n));
            memset(gdw, 0, sizeof(float) * wsz(&d));
            memset(gdb, 0, sizeof(float) * d.cout);
            conv2d_forward(&d, n, x, w, b, gy);
            snprintf(what, sizeof what, "conv %s [%s] forward", nm, an);
            check_close(what, gy, y, ysz(&d, n), rt, 0);
            conv2d_backward_data(&d, n, dy, w, gdx);
            snprintf(what, sizeof what, "conv %s [%s] backward data", nm, an);
            check_close(what, gdx, dx, xsz(&d, n), rt, 0);
            conv2d_backward_weights(&d, n, x, dy, gdw, bias ? gdb : NULL);
            snprintf(what, sizeof what, "conv %s [%s] backward weights", nm, an);
            check_close(what, gdw, dw, wsz(&d), rt, 0);
            if (bias) {
                snprintf(what, sizeof what, "conv %s [%s] backward bias", nm, an);
                check_close(what, gdb, db, d.cout, rt, 0);
            }
        }
        d.algo = CONV_ALGO_AUTO;
        if (!strncmp(nm, "wino", 4)) {
            if (winograd_on_this_cpu())
                check(wino_possible, "conv %s: oneDNN's Winograd path takes it", nm);
            else
                check(!wino_possible, "conv %s: no Winograd kernel on this CPU (oneDNN's needs AVX-512): direct", nm);
        }
        /* reference kernels against PyTorch too */
        memset(gdx, 0, sizeof(float) * xsz(&d, n));
        memset(gdw, 0, sizeof(float) * wsz(&d));
        memset(gdb, 0, sizeof(float) * d.cout);
        conv2d_ref_forward(&d, n, x, w, b, gy);
        conv2d_ref_backward_data(&d, n, dy, w, gdx);
        conv2d_ref_backward_weights(&d, n, x, dy, gdw, gdb);
        double e1, s1, e2, s2, e3, s3;
        max_err(gy, y, ysz(&d, n), &e1, &s1);
        max_err(gdx, dx, xsz(&d, n), &e2, &s2);
        max_err(gdw, dw, wsz(&d), &e3, &s3);
        check(e1 <= RT_REF * s1 && e2 <= RT_REF * s2 && e3 <= RT_REF * s3,
              "conv %s reference kernels vs PyTorch: rel err fwd %.2g, data %.2g, weights %.2g (tol %.0g)", nm,
              e1 / s1, e2 / s2, e3 / s3, RT_REF);
        free(gy), free(gdx), free(gdw), free(gdb);
    }
    kfix_close(&k);
}

/* the paths under test: the dispatcher, and each backend alone */
enum { PATH_DISPATCH, PATH_GEMM, PATH_ONEDNN, PATH_WINOGRAD, PATH_DEPTHWISE, N_PATHS };
static const char *path_name[] = {"dispatch", "im2col+sgemm", "oneDNN", "oneDNN Winograd", "depthwise"};

/* runs the three passes on one path; backward passes add into dx, dw, db.  Returns 1 when the
 * path's backend declined a pass (conv_backend.h: nothing written), else 0. */
static int run_path(int path, const conv_desc *d, int n, const float *x, const float *w, const float *b,
                    const float *dy, float *y, float *dx, float *dw, float *db) {
    if (path == PATH_DISPATCH) {
        conv2d_forward(d, n, x, w, b, y);
        conv2d_backward_data(d, n, dy, w, dx);
        conv2d_backward_weights(d, n, x, dy, dw, db);
    } else if (path == PATH_GEMM) {
        if (conv2d_gemm_forward(d, n, x, w, b, y) != n || conv2d_gemm_backward_data(d, n, dy, w, dx) != n ||
            conv2d_gemm_backward_weights(d, n, x, dy, dw, db) != n)
            return 1;
    } else if (path == PATH_DEPTHWISE) {
        if (conv2d_depthwise_forward(d, n, x, w, b, y) != n || conv2d_depthwise_backward_data(d, n, dy, w, dx) != n ||
            conv2d_depthwise_backward_weights(d, n, x, dy, dw, db) != n)
            return 1;
    } else { /* oneDNN alone (PATH_WINOGRAD: d->algo asks for Winograd) */
        if (conv2d_onednn_forward(d, n, x, w, b, y) != n || conv2d_onednn_backward_data(d, n, dy, w, dx) != n ||
            conv2d_onednn_backward_weights(d, n, x, dy, dw) != n)
            return 1;
        conv2d_ref_backward_weights(d, n, x, dy, NULL, db); /* the bias gradient is not oneDNN's */
    }
    return 0;
}

/* whether the backend of a path takes the shape: 1 must, 0 must not, -1 either */
static int path_takes(int path, const conv_desc *d, int onednn) {
    if (path == PATH_GEMM) return !conv_is_depthwise(d);
    if (path == PATH_DEPTHWISE) return conv_is_depthwise(d);
    return onednn;
}

/* fast vs reference on random data, on every path; also checks that backward passes accumulate.
 * onednn: 1 the oneDNN path must take this shape, 0 it must decline it, -1 either. */
static void fast_vs_ref(const char *nm, conv_desc d, int n, int bias, int onednn) {
    if (!check(conv_desc_init(&d) == 0, "%s: desc init", nm)) return;
    size_t X = xsz(&d, n), Y = ysz(&d, n), Wn = wsz(&d);
    float *x = frand(X, 11, 1.0f), *w = frand(Wn, 12, 1.0f / sqrtf((float)(Wn / d.cout))), *b = bias ? frand(d.cout, 13, 1) : NULL;
    float *dy = frand(Y, 14, 1.0f);
    float *y1 = fzeros(Y), *y2 = fzeros(Y);
    /* backward buffers start non-zero: the contract is +=, so both must add the same amount */
    float *dx1 = frand(X, 15, 1), *dx2 = frand(X, 15, 1), *dw1 = frand(Wn, 16, 1), *dw2 = frand(Wn, 16, 1);
    float *db1 = frand(d.cout, 17, 1), *db2 = frand(d.cout, 17, 1);
    conv2d_ref_forward(&d, n, x, w, b, y2);
    conv2d_ref_backward_data(&d, n, dy, w, dx2);
    conv2d_ref_backward_weights(&d, n, x, dy, dw2, db2);
    char what[240];
    const float rt = conv2d_forward_is_winograd(&d, n) ? RT_WINO : RT_FAST;
    d.algo = CONV_ALGO_WINOGRAD;
    const int wino_possible = conv2d_forward_is_winograd(&d, n);
    d.algo = CONV_ALGO_AUTO;
    for (int path = 0; path < N_PATHS; path++) {
        if (path == PATH_WINOGRAD && !wino_possible) continue;
        d.algo = path == PATH_WINOGRAD ? CONV_ALGO_WINOGRAD : CONV_ALGO_AUTO;
        const float rtp = path == PATH_GEMM || path == PATH_DEPTHWISE ? RT_FAST : path == PATH_WINOGRAD ? RT_WINO : rt;
        fill_uniform(dx1, X, 15), fill_uniform(dw1, Wn, 16), fill_uniform(db1, d.cout, 17);
        memset(y1, 0, sizeof(float) * Y);
        int declined = run_path(path, &d, n, x, w, b, dy, y1, dx1, dw1, db1);
        if (path != PATH_DISPATCH) {
            int takes = path_takes(path, &d, onednn);
            if (takes >= 0)
                check(declined == !takes, "%s: the %s backend %s this shape (groups %d)", nm, path_name[path],
                      takes ? "takes" : "declines", d.groups);
            if (declined) { /* the first declined pass wrote nothing; a shape declined (not oneDNN with
                             * groups 1, which may decline a later pass only) declines all three */
                const int whole = path == PATH_GEMM || path == PATH_DEPTHWISE || d.groups != 1;
                float *dx0 = frand(X, 15, 1), *dw0 = frand(Wn, 16, 1), *db0 = frand(d.cout, 17, 1);
                int clean = !memcmp(dx1, dx0, sizeof(float) * X);
                if (whole) clean &= !memcmp(dw1, dw0, sizeof(float) * Wn) && !memcmp(db1, db0, sizeof(float) * d.cout);
                for (size_t i = 0; i < Y && whole; i++) clean &= y1[i] == 0.0f;
                check(clean || !whole, "%s: a declined %s call wrote nothing", nm, path_name[path]);
                free(dx0), free(dw0), free(db0);
                continue;
            }
        }
        snprintf(what, sizeof what, "fast vs ref %s [%s] (n %d %dx%d c%d->%d k%dx%d s%d,%d pad %d %d %d %d g%d): forward",
                 nm, path_name[path], n, d.h, d.w, d.cin, d.cout, d.kh, d.kw, d.sh, d.sw, d.pt, d.pb, d.pl, d.pr, d.groups);
        check_close(what, y1, y2, Y, rtp, 0);
        snprintf(what, sizeof what, "fast vs ref %s [%s]: backward data (+=)", nm, path_name[path]);
        check_close(what, dx1, dx2, X, rtp, 0);
        snprintf(what, sizeof what, "fast vs ref %s [%s]: backward weights (+=)", nm, path_name[path]);
        check_close(what, dw1, dw2, Wn, rtp, 0);
        snprintf(what, sizeof what, "fast vs ref %s [%s]: backward bias (+=)", nm, path_name[path]);
        check_close(what, db1, db2, d.cout, rtp, 0);
    }
    d.algo = CONV_ALGO_AUTO;
    /* backward data that overwrites: whatever dx holds on entry, it ends as the gradient alone */
    float *dx0 = fzeros(X);
    conv2d_ref_backward_data(&d, n, dy, w, dx0);
    fill_uniform(dx1, X, 18);
    conv2d_backward_data_set(&d, n, dy, w, dx1);
    snprintf(what, sizeof what, "fast vs ref %s: backward data (=, conv2d_backward_data_set)", nm);
    check_close(what, dx1, dx0, X, rt, 0);
    free(dx0);
    /* NULL gradients are skipped */
    memcpy(dw2, dw1, sizeof(float) * Wn);
    memcpy(db2, db1, sizeof(float) * d.cout);
    conv2d_backward_weights(&d, n, x, dy, NULL, db1);
    conv2d_backward_weights(&d, n, x, dy, dw1, NULL);
    conv2d_backward_data(&d, n, dy, w, NULL);
    check(memcmp(dw1, dw2, sizeof(float) * Wn) != 0 && memcmp(db1, db2, sizeof(float) * d.cout) != 0,
          "%s: dw=NULL / db=NULL each skip only that gradient", nm);
    free(x), free(w), free(b), free(dy), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2), free(db1), free(db2);
}


/* awkward shapes: odd channels, non-square kernels, asymmetric pads, stride 3, n = 1 (threaded
 * sgemm path), n >= threads (per-thread path), tiny outputs (multi-image chunks) */
static void fast_dense(void) {
    fast_vs_ref("dense 3x3", CD(11, 13, 67, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3, 1, 1);
    fast_vs_ref("dense 3x3 batch-1", CD(11, 13, 67, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1), 1, 1, 1);
    fast_vs_ref("dense 2x4 s3 asym", CD(13, 17, 5, 9, 2, 4, 3, 2, 2, 0, 0, 3, 1), 4, 1, 1);
    fast_vs_ref("dense tiny output", CD(4, 4, 16, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1), 20, 1, 1);
    fast_vs_ref("dense big pad", CD(3, 5, 4, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1), 2, 0, 1);
    fast_vs_ref("stem 7x7 s2", CD(30, 29, 3, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1), 3, 0, 1);
    fast_vs_ref("depthwise c1 is dense", CD(7, 8, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1), 2, 1, 1);
}

static void fast_pointwise(void) {
    fast_vs_ref("1x1", CD(7, 5, 40, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1), 3, 1, 1);
    fast_vs_ref("1x1 batch-1", CD(7, 5, 40, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1), 1, 1, 1);
    fast_vs_ref("1x1 s2", CD(8, 9, 24, 40, 1, 1, 2, 2, 0, 0, 0, 0, 1), 3, 0, 1);
    fast_vs_ref("1x1 padded", CD(5, 6, 8, 8, 1, 1, 1, 1, 1, 0, 0, 1, 1), 2, 1, 1);
}

static void fast_winograd(void) {
    fast_vs_ref("winograd 3x3 c32->48", CD(10, 12, 32, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3, 1, 1);
    fast_vs_ref("winograd 3x3 batch-9 (two chunks)", CD(64, 64, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1), 9, 0, 1);
    fast_vs_ref("dense 3x3 c512 4x4 (direct, too small for Winograd)", CD(4, 4, 512, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3, 0, 1);
}

static void fast_grouped(void) {
    fast_vs_ref("grouped g3", CD(9, 10, 12, 9, 3, 3, 2, 1, 1, 1, 0, 2, 3), 3, 1, 0);
    fast_vs_ref("grouped g4 1x1", CD(6, 6, 32, 16, 1, 1, 1, 1, 0, 0, 0, 0, 4), 2, 1, 0);
    fast_vs_ref("grouped g2 batch-1", CD(9, 8, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 2), 1, 0, 0);
}

static void fast_depthwise(void) {
    fast_vs_ref("depthwise c100", CD(9, 11, 100, 100, 3, 3, 1, 1, 1, 1, 1, 1, 100), 3, 1, 0);
    fast_vs_ref("depthwise c100 s2 batch-1", CD(10, 9, 100, 100, 3, 3, 2, 2, 0, 1, 0, 1, 100), 1, 1, 0);
    fast_vs_ref("depthwise 5x3 asym", CD(8, 12, 24, 24, 5, 3, 2, 1, 2, 1, 0, 2, 24), 3, 0, 0);
    fast_vs_ref("depthwise mult 3", CD(7, 8, 5, 15, 3, 3, 1, 2, 1, 1, 1, 1, 5), 2, 1, 0);
}

/* conv2d forward with activation act on one path: 0 dispatch, 1 im2col, 2 oneDNN, 3 oneDNN
 * Winograd (p->algo asks for it), 4 depthwise, 5 frozen weights under a fresh key, 6 reference;
 * 1 when the backend declined (nothing written) */
enum { FWD_PATHS = 7 };
static int forward_on(int path, conv_desc *p, sn_act act, int n, const float *x, const float *w, const float *b,
                      float *y, unsigned long *key) {
    p->act = act;
    if (path == 1) return conv2d_gemm_forward(p, n, x, w, b, y) != n;
    if (path == 2 || path == 3) return conv2d_onednn_forward(p, n, x, w, b, y) != n;
    if (path == 4) return conv2d_depthwise_forward(p, n, x, w, b, y) != n;
    if (path == 5) conv2d_forward_keyed(p, n, x, w, b, y, (*key)++);
    else if (path == 6) conv2d_ref_forward(p, n, x, w, b, y);
    else conv2d_forward(p, n, x, w, b, y);
    return 0;
}

/* conv_desc.act: y = act(conv + bias) in the same pass, bitwise eltwise_relu_forward /
 * eltwise_relu6_forward of the plain output, on every forward path (oneDNN's post-op, the im2col
 * and depthwise kernels, frozen weights, the reference); weights scaled so that many outputs
 * pass 6.  Then the backward pieces: act_backward's mask and bias gradient, and
 * conv2d_backward_data_masked_set (fused into the depthwise kernel's rows, or masked after). */
static void fused_activation(const char *nm, conv_desc d, int n) {
    if (!check(conv_desc_init(&d) == 0, "%s: desc init", nm)) return;
    size_t X = xsz(&d, n), Y = ysz(&d, n), Wn = wsz(&d);
    float *x = frand(X, 21, 1.0f), *w = frand(Wn, 22, 8.0f / sqrtf((float)(Wn / d.cout))), *b = frand(d.cout, 23, 2);
    float *y0 = fzeros(Y), *y1 = fzeros(Y), *ya = fzeros(Y);
    static unsigned long key = 0xac7;
    for (sn_act act = ACT_RELU; act <= ACT_RELU6; act++) {
        const char *an = act == ACT_RELU ? "ReLU" : "ReLU6";
        int above6 = 0, zero = 0, mid = 0, bad_paths = 0;
        char failed[200] = "";
        for (int path = 0; path < FWD_PATHS; path++) { /* the reference last: y0, y1 are its outputs below */
            conv_desc p = d;
            p.algo = path == 3 ? CONV_ALGO_WINOGRAD : CONV_ALGO_AUTO;
            if (forward_on(path, &p, ACT_NONE, n, x, w, b, y0, &key)) continue; /* the backend declined */
            if (act == ACT_RELU) eltwise_relu_forward(Y, y0, ya);
            else eltwise_relu6_forward(Y, y0, ya);
            int declined = forward_on(path, &p, act, n, x, w, b, y1, &key);
            if (declined || memcmp(y1, ya, sizeof(float) * Y)) {
                bad_paths++;
                snprintf(failed, sizeof failed, "path %d %s", path, declined ? "declined with the activation" : "differs");
            }
        }
        for (size_t i = 0; i < Y; i++) above6 += y0[i] > 6.0f, zero += y0[i] <= 0.0f, mid += y0[i] > 0 && y0[i] < 6;
        /* backward: the mask from the output, and the bias gradient summed in the same pass */
        float *g1 = frand(Y, 24, 1), *g2 = frand(Y, 24, 1), *db1 = frand(d.cout, 25, 1), *db2 = frand(d.cout, 25, 1);
        act_backward((long)n * d.oh * d.ow, d.cout, act, y1, g1, db1);
        int maskok = 1;
        for (size_t i = 0; i < Y; i++) { /* the activations' definition, written out as the oracle */
            int pass = act == ACT_RELU ? y0[i] > 0 : y0[i] > 0 && y0[i] < 6;
            maskok &= g1[i] == (pass ? g2[i] : 0.0f);
            g2[i] = pass ? g2[i] : 0.0f;
        }
        if (!conv_is_depthwise(&d)) conv2d_backward_weights(&d, n, x, g2, NULL, db2);
        check(maskok && (conv_is_depthwise(&d) ? 1 : !memcmp(db1, db2, sizeof(float) * d.cout)),
              "%s: act_backward %s: the mask of the activation's input, read from its output; the bias "
              "gradient bitwise conv2d_backward_weights' of the masked gradient", nm, an);
        free(g1), free(g2), free(db1), free(db2);
        /* the input gradient of a convolution of an activation's output, masked by that activation */
        float *xa = fzeros(X), *dyo = frand(Y, 26, 1), *dx1 = frand(X, 27, 1), *dx2 = fzeros(X);
        for (size_t i = 0; i < X; i++) xa[i] = 8 * x[i] > 6 ? 6 : 8 * x[i] > 0 ? 8 * x[i] : 0;
        conv2d_backward_data_masked_set(&d, n, dyo, w, dx1, act, xa);
        conv2d_backward_data_set(&d, n, dyo, w, dx2);
        act_mask((long)X, act, xa, dx2);
        check(!memcmp(dx1, dx2, sizeof(float) * X),
              "%s: backward data masked by the %s at its input%s: bitwise the unmasked result masked afterwards", nm,
              an, conv_is_depthwise(&d) ? ", row by row in the depthwise kernel" : "");
        free(xa), free(dyo), free(dx1), free(dx2);
        check(bad_paths == 0 && above6 > 0 && zero > 0 && mid > 0,
              "%s: fused %s bitwise equal to the separate pass on every path (%s; outputs <= 0: %d, in (0,6): %d, "
              "> 6: %d)", nm, an, bad_paths ? failed : "all equal", zero, mid, above6);
    }
    free(x), free(w), free(b), free(y0), free(y1), free(ya);
}

static void fused_dense(void) {
    fused_activation("1x1 (expand)", CD(8, 8, 24, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1), 3);
    fused_activation("3x3 s2 TF-SAME (stem)", CD(17, 16, 3, 32, 3, 3, 2, 2, 0, 1, 0, 1, 1), 2);
    fused_activation("3x3 Winograd", CD(12, 12, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1), 9);
    fused_activation("grouped g4 (im2col)", CD(6, 6, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 4), 2);
}

static void fused_depthwise(void) {
    fused_activation("depthwise 3x3 s1", CD(9, 11, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 96), 3);
    fused_activation("depthwise 3x3 s2", CD(10, 9, 40, 40, 3, 3, 2, 2, 0, 1, 0, 1, 40), 2);
    fused_activation("depthwise mult 3 (generic loops)", CD(7, 8, 5, 15, 3, 3, 1, 2, 1, 1, 1, 1, 5), 2);
}

/* inside an OpenMP parallel region oneDNN is declined (its primitives are made for a thread
 * count) and the dispatch still gives the right answer on each thread */
static void nested_region(void) {
    conv_desc d = {.h = 9, .w = 9, .cin = 16, .cout = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1, .groups = 1};
    conv_desc_init(&d);
    size_t X = xsz(&d, 2), Y = ysz(&d, 2), Wn = wsz(&d);
    float *x = frand(X, 41, 1), *w = frand(Wn, 42, 0.3f), *ref = fzeros(Y), *y[2] = {fzeros(Y), fzeros(Y)};
    int declined[2] = {0, 0};
    conv2d_ref_forward(&d, 2, x, w, NULL, ref);
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num();
        if (t < 2) {
            declined[t] = conv2d_onednn_forward(&d, 2, x, w, NULL, y[t]) == 0;
            conv2d_forward(&d, 2, x, w, NULL, y[t]);
        }
    }
    check(declined[0] == 1 && (omp_get_max_threads() < 2 || declined[1] == 1),
          "oneDNN declines calls from inside a parallel region");
    check_close("conv2d_forward inside a parallel region (thread 0)", y[0], ref, Y, RT_FAST, 0);
    if (omp_get_max_threads() >= 2) check_close("conv2d_forward inside a parallel region (thread 1)", y[1], ref, Y, RT_FAST, 0);
    free(x), free(w), free(ref), free(y[0]), free(y[1]);
}

static double loss_of(const conv_desc *d, int n, const float *x, const float *w, const float *b, const float *r, float *y) {
    conv2d_forward(d, n, x, w, b, y);
    double s = 0;
    for (size_t i = 0; i < ysz(d, n); i++) s += (double)y[i] * r[i];
    return s;
}

/* finite differences of L = sum(y * r) wrt x, w, b at a few random elements */
static void finite_diff(const char *nm, conv_desc d, int n) {
    if (!check(conv_desc_init(&d) == 0, "%s: desc init", nm)) return;
    size_t X = xsz(&d, n), Y = ysz(&d, n), Wn = wsz(&d);
    float *x = frand(X, 21, 1), *w = frand(Wn, 22, 0.5f), *b = frand(d.cout, 23, 1), *r = frand(Y, 24, 1), *y = fzeros(Y);
    float *dx = fzeros(X), *dw = fzeros(Wn), *db = fzeros(d.cout);
    conv2d_backward_data(&d, n, r, w, dx);
    conv2d_backward_weights(&d, n, x, r, dw, db);
    const float h = 1e-2f;
    struct { float *p, *g; size_t len; const char *nm; } t[3] = {{x, dx, X, "x"}, {w, dw, Wn, "w"}, {b, db, (size_t)d.cout, "b"}};
    for (int ti = 0; ti < 3; ti++) {
        double worst = 0, gmax = 0;
        for (size_t i = 0; i < t[ti].len; i++) gmax = fmax(gmax, fabs(t[ti].g[i]));
        unsigned long long s = 99 + ti;
        for (int k = 0; k < 6; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t i = (size_t)(s >> 33) % t[ti].len;
            float v = t[ti].p[i];
            t[ti].p[i] = v + h;
            double lp = loss_of(&d, n, x, w, b, r, y);
            t[ti].p[i] = v - h;
            double lm = loss_of(&d, n, x, w, b, r, y);
            t[ti].p[i] = v;
            double fd = (lp - lm) / (2.0 * ((double)(v + h) - (double)v));
            worst = fmax(worst, fabs(fd - t[ti].g[i]));
        }
        check(worst <= 1e-2 * gmax, "finite differences %s d/d%s: max |fd - analytic| %.3g, scale %.3g (tol rel 1e-2, h %.0g)",
              nm, t[ti].nm, worst, gmax, h);
    }
    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
}

static void determinism(const char *nm, conv_desc d, int n) {
    if (conv_desc_init(&d)) return;
    size_t X = xsz(&d, n), Y = ysz(&d, n), Wn = wsz(&d);
    float *x = frand(X, 31, 1), *w = frand(Wn, 32, 0.1f), *b = frand(d.cout, 33, 1), *dy = frand(Y, 34, 1);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int r = 0; r < 2; r++) {
        y[r] = fzeros(Y), dx[r] = fzeros(X), dw[r] = fzeros(Wn), db[r] = fzeros(d.cout);
        conv2d_forward(&d, n, x, w, b, y[r]);
        conv2d_backward_data(&d, n, dy, w, dx[r]);
        conv2d_backward_weights(&d, n, x, dy, dw[r], db[r]);
    }
    check(!memcmp(y[0], y[1], Y * 4) && !memcmp(dx[0], dx[1], X * 4) && !memcmp(dw[0], dw[1], Wn * 4) &&
              !memcmp(db[0], db[1], (size_t)d.cout * 4),
          "determinism %s: two runs bitwise equal (forward, data, weights, bias)", nm);
    for (int r = 0; r < 2; r++) free(y[r]), free(dx[r]), free(dw[r]), free(db[r]);
    free(x), free(w), free(b), free(dy);
}

/* conv2d_forward_keyed: kept weight copies are found by (key, weights), never mixed up.  A keyed
 * call runs oneDNN's inference primitive, which may be Winograd F(2x2,3x3) on pre-transformed
 * weights: against the plain forward it is checked to RT_WINO, against itself bitwise. */
static void keyed_weights(void) {
    conv_desc d = CD(14, 14, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    conv_desc_init(&d);
    const int n = 2;
    size_t X = xsz(&d, n), Y = ysz(&d, n), Wn = wsz(&d);
    float *x = frand(X, 51, 1), *w1 = frand(Wn, 52, 0.2f), *w2 = frand(Wn, 53, 0.2f);
    float *r1 = fzeros(Y), *r2 = fzeros(Y), *k1 = fzeros(Y), *k2 = fzeros(Y), *y = fzeros(Y);
    conv2d_forward(&d, n, x, w1, NULL, r1);
    conv2d_forward(&d, n, x, w2, NULL, r2);
    conv2d_forward_keyed(&d, n, x, w1, NULL, k1, 101); /* first calls: reordered, then kept */
    conv2d_forward_keyed(&d, n, x, w2, NULL, k2, 101);
    check_close("keyed forward (inference primitive) vs plain forward, weights 1", k1, r1, Y, RT_WINO, 0);
    check_close("keyed forward (inference primitive) vs plain forward, weights 2", k2, r2, Y, RT_WINO, 0);
    bool ok = true;
    for (int k = 0; k < 6; k++) { /* two layers of one shape, alternating, under one key */
        conv2d_forward_keyed(&d, n, x, k % 2 ? w2 : w1, NULL, y, 101);
        ok &= !memcmp(y, k % 2 ? k2 : k1, Y * sizeof(float));
    }
    check(ok, "keyed forward: two weight tensors of one shape under one key, alternating: bitwise their first results");
    /* a new key for changed weights is seen at once (the old copy is not used) */
    for (size_t i = 0; i < Wn; i++) w1[i] = -w1[i];
    conv2d_forward(&d, n, x, w1, NULL, r1);
    conv2d_forward_keyed(&d, n, x, w1, NULL, y, 102);
    check_close("keyed forward: changed weights under a new key give the new result", y, r1, Y, RT_WINO, 0);
    conv2d_forward_keyed(&d, n, x, w1, NULL, y, 0);
    check(!memcmp(y, r1, Y * sizeof(float)), "keyed forward: key 0 is the plain forward");
    free(x), free(w1), free(w2), free(r1), free(r2), free(k1), free(k2), free(y);
}

static void descriptor(void) {
    int lo, hi;
    conv_same_padding(8, 3, 2, &lo, &hi);
    int ok = lo == 0 && hi == 1;
    conv_same_padding(9, 3, 2, &lo, &hi);
    ok &= lo == 1 && hi == 1;
    conv_same_padding(224, 7, 2, &lo, &hi);
    ok &= lo == 2 && hi == 3;
    conv_same_padding(5, 1, 1, &lo, &hi);
    ok &= lo == 0 && hi == 0;
    check(ok, "conv_same_padding matches TensorFlow SAME (8/3/2 -> 0,1; 9 -> 1,1; 224/7/2 -> 2,3)");
    conv_desc bad = CD(8, 8, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4);
    check(conv_desc_init(&bad) == -1, "conv_desc_init rejects groups not dividing cin");
    bad = CD(2, 2, 4, 4, 5, 5, 1, 1, 0, 0, 0, 0, 1);
    check(conv_desc_init(&bad) == -1, "conv_desc_init rejects a kernel larger than the padded input");
    bad = CD(8, 8, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    bad.act = (sn_act)7;
    check(conv_desc_init(&bad) == -1, "conv_desc_init rejects an unknown activation");
    conv_desc stem = CD(224, 224, 3, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1);
    check(conv_desc_init(&stem) == 0 && stem.oh == 112 && stem.ow == 112 && conv2d_macs(&stem, 1) == 118013952.0,
          "resnet stem: 112x112 output, 118.0M MACs");
}

/* CONV_ALGO_AUTO takes Winograd only where it pays (measured on this machine, see conv_onednn.c) */
static void auto_algorithm(void) {
    conv_desc big = CD(56, 56, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1), small = CD(14, 14, 256, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    conv_desc_init(&big), conv_desc_init(&small);
    if (winograd_on_this_cpu())
        check(conv2d_onednn_algorithm(&big, 1) == 2 && conv2d_onednn_algorithm(&small, 1) == 1 &&
                  conv2d_onednn_algorithm(&small, 32) == 2,
              "auto algorithm: Winograd for 64@56x56 batch 1 and 256@14x14 batch 32, direct for 256@14x14 batch 1");
    else
        check(conv2d_onednn_algorithm(&big, 1) == 1 && conv2d_onednn_algorithm(&small, 1) == 1 &&
                  conv2d_onednn_algorithm(&small, 32) == 1,
              "auto algorithm: no Winograd kernel on this CPU (oneDNN's needs AVX-512): direct for every shape");
    big.algo = CONV_ALGO_DIRECT;
    check(conv2d_onednn_algorithm(&big, 1) == 1 && !conv2d_forward_is_winograd(&big, 1),
          "CONV_ALGO_DIRECT: direct for 64@56x56 batch 1");
}

static void finite_differences(void) {
    finite_diff("dense 3x3 s2", CD(7, 6, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1), 2);
    finite_diff("dense TF-SAME asym", CD(8, 10, 3, 4, 3, 3, 2, 2, 0, 1, 0, 1, 1), 2);
    finite_diff("depthwise 3x3", CD(7, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6), 2);
    finite_diff("depthwise mult2 s2", CD(7, 6, 3, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3), 1);
    finite_diff("grouped g2", CD(6, 5, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2), 2);
}

static void determinism_all(void) {
    determinism("dense 3x3", CD(16, 16, 32, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1), 6);
    determinism("dense 3x3 batch-1", CD(16, 16, 32, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1), 1);
    determinism("1x1", CD(16, 16, 64, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1), 4);
    determinism("depthwise", CD(16, 16, 96, 96, 3, 3, 2, 2, 1, 1, 1, 1, 96), 5);
    determinism("grouped", CD(12, 12, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 4), 3);
}

static const test_case cases[] = {
    {"descriptor", descriptor},
    {"pytorch", fixture_cases},
    {"fast-dense", fast_dense},
    {"fast-pointwise", fast_pointwise},
    {"fast-winograd", fast_winograd},
    {"fast-grouped", fast_grouped},
    {"fast-depthwise", fast_depthwise},
    {"nested-region", nested_region},
    {"keyed-weights", keyed_weights},
    {"fused-dense", fused_dense},
    {"fused-depthwise", fused_depthwise},
    {"auto-algorithm", auto_algorithm},
    {"finite-differences", finite_differences},
    {"determinism", determinism_all},
};
TEST_MAIN(cases)
