/* conv_dwpw.c - an inverted-residual block (1x1 expansion, depthwise, 1x1 projection) in one pass
 * (see conv_dwpw.h). */
#include "kernels/conv_dwpw.h"
#include <omp.h>
#include <string.h>
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/gemm.h"
#include "kernels/gemm_tile.h"

/* A block of output rows holds at most DWPW_FLOATS floats of e and t together (320 KB: most of a
 * 512 KB L2, the rest for the weights and the rows of x and y streaming through), or twice the
 * block's 1x1 weights where that is more (each block streams them again: the deep blocks, whose
 * weights outweigh their activations, run in one or two blocks), and at most DWPW_M output pixels
 * (the GEMMs' M; more gains nothing once the kernels' register blocking is full). */
#define DWPW_FLOATS 81920
#define DWPW_M 512

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static long round16(long v) { return (v + 15) / 16 * 16; }

bool conv2d_dwpw_takes(const conv_desc *dw, const conv_desc *pw) {
    return conv_is_depthwise(dw) && pw->groups == 1 && pw->kh == 1 && pw->kw == 1 && pw->sh == 1 && pw->sw == 1 &&
           !pw->pt && !pw->pb && !pw->pl && !pw->pr && pw->cin == dw->cout && pw->h == dw->oh && pw->w == dw->ow;
}

bool conv2d_dwpw_takes_expansion(const conv_desc *ex, const conv_desc *dw) {
    return ex->groups == 1 && ex->kh == 1 && ex->kw == 1 && ex->sh == 1 && ex->sw == 1 && !ex->pt && !ex->pb &&
           !ex->pl && !ex->pr && ex->cout == dw->cin && ex->oh == dw->h && ex->ow == dw->w;
}

static bool chains(const conv_dwpw *b) {
    return conv2d_dwpw_takes(b->dw, b->pw) && (!b->ex || conv2d_dwpw_takes_expansion(b->ex, b->dw));
}

/* how a call is cut: P shares of each image's rows, blocks of R output rows, and each thread's
 * buffers: efl floats for the rows of e (none without expansion), tfl for t */
typedef struct {
    int threads, P, R;
    long efl, tfl;
} dwpw_plan;

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* rows of e that R output rows read at most */
static long e_rows(const conv_desc *dw, int R) { return imin(dw->h, (R - 1) * dw->sh + dw->kh); }

static dwpw_plan plan_of(const conv_dwpw *b, int n) {
    const conv_desc *dw = b->dw;
    dwpw_plan p = {.threads = omp_in_parallel() ? 1 : omp_get_max_threads()};
    if (p.threads < 1) p.threads = 1;
    /* shares: enough that n * P is a multiple of the threads (each gets as many rows) */
    p.P = imin(dw->oh, p.threads / gcd(n > 0 ? n : 1, p.threads));
    const int share = (dw->oh + p.P - 1) / p.P;
    const long erow = b->ex ? (long)dw->w * dw->cin : 0, trow = (long)dw->ow * dw->cout;
    /* each block streams the 1x1 weights again: blocks hold at least twice their size */
    const long wfl = (b->ex ? (long)b->ex->cin * dw->cin : 0) + (long)dw->cout * b->pw->cout;
    const long budget = 2 * wfl > DWPW_FLOATS ? 2 * wfl : DWPW_FLOATS;
    p.R = 1;
    while (p.R < share && (long)(p.R + 1) * dw->ow <= DWPW_M && e_rows(dw, p.R + 1) * erow + (p.R + 1) * trow <= budget)
        p.R++;
    p.efl = round16(e_rows(dw, p.R) * erow);
    p.tfl = round16(p.R * trow);
    return p;
}

size_t conv2d_dwpw_scratch(const conv_dwpw *b, int n) {
    if (!chains(b)) return 0;
    const dwpw_plan p = plan_of(b, n);
    return (size_t)(p.efl + p.tfl) * (size_t)p.threads;
}

/* y[M, C] = act(y + bias + res) in place (bias, res may be NULL): the bias after the sum, then the
 * residual, then the activation, as the unfused passes do */
static void bias_res_act(long M, int C, const float *bias, const float *res, sn_act act, float *y) {
    for (long p = 0; p < M; p++) {
        float *yp = y + p * C;
        const float *rp = res ? res + p * C : NULL;
        if (bias)
            for (int c = 0; c < C; c++) yp[c] += bias[c];
        if (rp)
            for (int c = 0; c < C; c++) yp[c] += rp[c];
        if (act == ACT_RELU)
            for (int c = 0; c < C; c++) yp[c] = act_value(ACT_RELU, yp[c]);
        else if (act == ACT_RELU6)
            for (int c = 0; c < C; c++) yp[c] = act_value(ACT_RELU6, yp[c]);
    }
}

void conv2d_dwpw_pack_1x1(int N, int K, const float *w, float *wp) {
    for (int n0 = 0; n0 < N; n0 += 24) {
        const int nw = imin(24, N - n0);
        for (int k = 0; k < K; k++)
            for (int j = 0; j < nw; j++) wp[(long)n0 * K + (long)k * nw + j] = w[(long)(n0 + j) * K + k];
    }
}


/* c[M, N] = act(a[M, K] * w^T + bias + res) (bias, res may be NULL): from the packed weights wp
 * (N a multiple of 8, AVX2), a panel of 24 output channels at a time over all rows, else with
 * gemm_sgemm on w and a pass for the rest; the order of the unfused passes either way */
static void pointwise(long M, int N, int K, const float *a, const float *w, const float *wp, const float *bias,
                      const float *res, sn_act act, float *c) {
#ifdef GEMM_TILE
    if (wp && N % 8 == 0) {
        for (int n0 = 0; n0 < N; n0 += 24)
            gemm_panel_rows(imin(3, (N - n0) / 8), M, K, a, wp + (long)n0 * K, bias ? bias + n0 : NULL,
                            res ? res + n0 : NULL, N, act, c + n0, NULL);
        return;
    }
#endif
    (void)wp;
    gemm_sgemm(false, true, (int)M, N, K, 1.0f, a, K, w, K, 0.0f, c, N);
    bias_res_act(M, N, bias, res, act, c);
}

/* rows [ya, yb) of e for one image xi[h, w, Cin], into er[(yb - ya) * w, Ce] */
static void expand_rows(const conv_dwpw *b, const float *xi, int ya, int yb, float *er) {
    const conv_desc *ex = b->ex;
    pointwise((long)(yb - ya) * ex->w, ex->cout, ex->cin, xi + (long)ya * ex->w * ex->cin, b->we, b->wep, b->be,
              NULL, ex->act, er);
}

/* output rows [r0, r1) of one image (input xi, residual ri or NULL, output yi), block by block in
 * order; e holds rows [wa, wb) of the expansion, the rows the next block shares moved to its
 * start, so each row of e is computed once per call of this */
static void image_rows(const conv_dwpw *b, const dwpw_plan *p, const float *xi, const float *ri, float *yi, int r0,
                       int r1, float *e, float *t) {
    const conv_desc *dw = b->dw, *pw = b->pw;
    const int S = dw->sh, OW = dw->ow, C = dw->cout, CO = pw->cout;
    const long erow = (long)dw->w * dw->cin;
    int wa = 0, wb = 0;
    for (int oy0 = r0; oy0 < r1; oy0 += p->R) {
        const int oy1 = imin(oy0 + p->R, r1);
        conv_desc d = *dw;
        const float *src = xi;
        if (b->ex) { /* the rows these outputs read: [ia, ib) */
            const int ia = imax(0, oy0 * S - dw->pt), ib = imax(ia, imin(dw->h, (oy1 - 1) * S - dw->pt + dw->kh));
            if (ia < wb) memmove(e, e + (ia - wa) * erow, sizeof(float) * (size_t)((wb - ia) * erow));
            else wb = ia;
            wa = ia;
            if (ib > wb) expand_rows(b, xi, wb, ib, e + (wb - wa) * erow);
            wb = imax(wb, ib);
            d.h = wb - wa, d.pt = dw->pt + wa; /* e as an image of those rows: the others are padding */
            src = e;
        }
        for (int oy = oy0; oy < oy1; oy++)
            conv2d_depthwise_forward_row(&d, src, b->wd, b->bd, oy, t + (long)(oy - oy0) * OW * C);
        const long off = (long)oy0 * OW * CO;
        pointwise((long)(oy1 - oy0) * OW, CO, C, t, b->wp, b->wpp, b->bp, ri ? ri + off : NULL, pw->act, yi + off);
    }
}

int conv2d_dwpw_forward(const conv_dwpw *b, int n, const float *x, const float *res, float *y, float *scratch) {
    if (!chains(b)) return sn_error("depthwise + 1x1 convolution block: the shapes do not chain");
    if (n <= 0) return 0;
    const dwpw_plan p = plan_of(b, n);
    const conv_desc *in = b->ex ? b->ex : b->dw;
    const long isz = (long)in->h * in->w * in->cin, osz = (long)b->pw->oh * b->pw->ow * b->pw->cout;
    const long items = (long)n * p.P, OH = b->dw->oh;
#pragma omp parallel for schedule(static) num_threads(p.threads) if (p.threads > 1)
    for (long it = 0; it < items; it++) {
        const long i = it / p.P, s = it % p.P;
        float *e = scratch + (p.efl + p.tfl) * omp_get_thread_num();
        image_rows(b, &p, x + i * isz, res ? res + i * osz : NULL, y + i * osz, (int)(OH * s / p.P),
                   (int)(OH * (s + 1) / p.P), e, e + p.efl);
    }
    return 0;
}

int conv2d_dwpw_forward_ref(const conv_dwpw *b, int n, const float *x, const float *res, float *y) {
    if (!chains(b)) return sn_error("depthwise + 1x1 convolution block: the shapes do not chain");
    const conv_desc *dw = b->dw, *pw = b->pw;
    const long en = b->ex ? (long)n * dw->h * dw->w * dw->cin : 0, tn = (long)n * dw->oh * dw->ow * dw->cout,
               yn = (long)n * pw->oh * pw->ow * pw->cout;
    float *e = en > 0 ? sn_alloc(sizeof(float) * (size_t)en, "expanded block input") : NULL;
    float *t = sn_alloc(sizeof(float) * (size_t)(tn > 0 ? tn : 1), "depthwise output");
    if (!t || (en > 0 && !e)) {
        sn_free(e);
        sn_free(t);
        return -1;
    }
    if (b->ex) conv2d_ref_forward(b->ex, n, x, b->we, b->be, e);
    conv2d_ref_forward(dw, n, b->ex ? e : x, b->wd, b->bd, t);
    conv_desc q = *pw;
    q.act = ACT_NONE;
    conv2d_ref_forward(&q, n, t, b->wp, b->bp, y);
    for (long k = 0; k < yn; k++) y[k] = act_value(pw->act, y[k] + (res ? res[k] : 0.0f));
    sn_free(e);
    sn_free(t);
    return 0;
}
