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
/* An image split between threads whose output rows do not divide evenly between them (7 rows on
 * 2 threads: 4 and 3, and 5 rows of e each) and whose e and t together take at most DWPW_WHOLE
 * floats (two 512 KB L2s) runs whole: e in one buffer, written by all threads, then t and y in
 * equal shares of pixels (measured 6-9% faster on MobileNetV2's 7x7 blocks, 2 threads; 10-15%
 * slower on its 14x14 ones, whose rows split evenly). */
#define DWPW_WHOLE 262144

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static long round16(long v) { return (v + 15) / 16 * 16; }

bool conv2d_dwpw_takes(const conv_desc *dw, const conv_desc *pw) {
    return conv_is_depthwise(dw) && pw->groups == 1 && conv_is_pointwise(pw) && pw->cin == dw->cout &&
           pw->h == dw->oh && pw->w == dw->ow;
}

bool conv2d_dwpw_takes_expansion(const conv_desc *ex, const conv_desc *dw) {
    return ex->groups == 1 && conv_is_pointwise(ex) && ex->cout == dw->cin && ex->oh == dw->h && ex->ow == dw->w;
}

static bool chains(const conv_dwpw *b) {
    return conv2d_dwpw_takes(b->dw, b->pw) && (!b->ex || conv2d_dwpw_takes_expansion(b->ex, b->dw));
}

/* how a call is cut: P shares of each image's rows, blocks of R output rows, and each thread's
 * buffers: efl floats for the rows of e (none without expansion), tfl for t; or (whole) each
 * image by all threads in turn, with one buffer of efl floats for all of e and one of tfl for t */
typedef struct {
    int threads, P, R, whole;
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
    const long efull = b->ex ? (long)dw->h * erow : 0, tfull = (long)dw->oh * trow;
    if (p.P > 1 && dw->oh % p.P && efull + tfull <= DWPW_WHOLE) {
        p.whole = 1, p.R = dw->oh;
        p.efl = round16(efull), p.tfl = round16(tfull);
        return p;
    }
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
    return (size_t)(p.efl + p.tfl) * (size_t)(p.whole ? 1 : p.threads);
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

/* the panels of N output channels: 24 wide, the last N % 24, but 16 + 16 where that would leave
 * 8 (a 6 x 8 tile does half the multiplies per load of a 6 x 16 one): where panel q starts, and
 * how many there are */
static bool split16(int N) { return N % 24 == 8 && N >= 32; }
static int panel_start(int N, int q) {
    const int full = split16(N) ? (N - 32) / 24 : N / 24;
    return split16(N) ? (q <= full ? q * 24 : full * 24 + 16 * (q - full)) : imin(N, q * 24);
}
static int panel_count(int N) { return split16(N) ? (N - 32) / 24 + 2 : (N + 23) / 24; }

void conv2d_dwpw_pack_1x1(int N, int K, const float *w, float *wp) {
    for (int q = 0; q < panel_count(N); q++) {
        const int n0 = panel_start(N, q), nw = panel_start(N, q + 1) - n0;
        for (int k = 0; k < K; k++)
            for (int j = 0; j < nw; j++) wp[(long)n0 * K + (long)k * nw + j] = w[(long)(n0 + j) * K + k];
    }
}

/* c[M, N] = act(a[M, K] * w^T + bias + res) (bias, res may be NULL): from the packed weights wp
 * (N a multiple of 8, AVX2), a panel of output channels at a time over all rows, else with
 * gemm_sgemm on w and a pass for the rest; the order of the unfused passes either way */
static void pointwise(long M, int N, int K, const float *a, const float *w, const float *wp, const float *bias,
                      const float *res, sn_act act, float *c) {
#ifdef GEMM_TILE
    if (wp && N % 8 == 0) {
        for (int q = 0; q < panel_count(N); q++) {
            const int n0 = panel_start(N, q);
            gemm_panel_rows((panel_start(N, q + 1) - n0) / 8, M, K, a, wp + (long)n0 * K, bias ? bias + n0 : NULL,
                            res ? res + n0 : NULL, N, act, c + n0, NULL);
        }
        return;
    }
#endif
    (void)wp;
    gemm_sgemm(false, true, (int)M, N, K, 1.0f, a, K, w, K, 0.0f, c, N);
    bias_res_act(M, N, bias, res, act, c);
}

bool conv2d_pw_gap_takes(int N) {
#ifdef GEMM_TILE
    return N > 0 && N % 8 == 0;
#else
    (void)N;
    return false;
#endif
}

int conv2d_pw_gap_forward(int n, int M, int N, int K, const float *x, const float *wp, const float *b, sn_act act,
                          float *y) {
    if (!conv2d_pw_gap_takes(N) || M <= 0 || K <= 0)
        return sn_error("1x1 convolution + global average pool: %d output channels, %d pixels, %d inputs not taken", N,
                        M, K);
#ifdef GEMM_TILE
    const int panels = panel_count(N);
#pragma omp parallel for collapse(2) schedule(static) if (!omp_in_parallel() && omp_get_max_threads() > 1)
    for (int i = 0; i < n; i++)
        for (int q = 0; q < panels; q++) { /* one panel of output channels: rows 48 at a time, into buf */
            const int n0 = panel_start(N, q), nw = panel_start(N, q + 1) - n0, NV = nw / 8;
            float buf[48 * 24];
            double acc[24] = {0};
            for (int m0 = 0; m0 < M; m0 += 48) {
                const int mr = imin(48, M - m0);
                gemm_panel_rows(NV, mr, K, x + ((long)i * M + m0) * K, wp + (long)n0 * K, b ? b + n0 : NULL, NULL, nw,
                                act, buf, NULL);
                for (int r = 0; r < mr; r++)
                    for (int j = 0; j < nw; j++) acc[j] += buf[r * nw + j];
            }
            for (int j = 0; j < nw; j++) y[(long)i * N + n0 + j] = (float)(acc[j] / M);
        }
#else
    (void)n, (void)x, (void)wp, (void)b, (void)act, (void)y;
#endif
    return 0;
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

/* the start of share k of T of M pixels: a multiple of 12 (whole tiles of 4 or 6 rows) */
static long share_at(long M, int k, int T) { return k >= T ? M : M * k / T / 12 * 12; }

/* one image (xi, residual ri or NULL, yi) by thread k of the T of the enclosing parallel region,
 * all of e in e and of t in t: the pixels of e in T shares, a barrier, then the output pixels
 * in T shares, each thread's depthwise outputs (whole rows or parts of rows) and their projection */
static void whole_image(const conv_dwpw *b, const float *xi, const float *ri, float *yi, float *e, float *t, int k,
                        int T) {
    const conv_desc *dw = b->dw, *pw = b->pw, *ex = b->ex;
    const float *src = xi;
    if (ex) {
        const long M = (long)dw->h * dw->w, a = share_at(M, k, T), z = share_at(M, k + 1, T);
        if (z > a)
            pointwise(z - a, ex->cout, ex->cin, xi + a * ex->cin, b->we, b->wep, b->be, NULL, ex->act,
                      e + a * ex->cout);
#pragma omp barrier
        src = e;
    }
    const int OW = dw->ow, C = dw->cout, CO = pw->cout;
    const long MO = (long)dw->oh * OW, a = share_at(MO, k, T), z = share_at(MO, k + 1, T);
    for (long q = a; q < z;) { /* columns [ox, ox + len) of row oy: an image OW - ox wide from ox */
        const int oy = (int)(q / OW), ox = (int)(q % OW), len = (int)(z - q < OW - ox ? z - q : OW - ox);
        conv_desc d = *dw;
        d.ow = len, d.pl = dw->pl - ox * dw->sw;
        conv2d_depthwise_forward_row(&d, src, b->wd, b->bd, oy, t + q * C);
        q += len;
    }
    if (z > a)
        pointwise(z - a, CO, C, t + a * C, b->wp, b->wpp, b->bp, ri ? ri + a * CO : NULL, pw->act, yi + a * CO);
}

int conv2d_dwpw_forward(const conv_dwpw *b, int n, const float *x, const float *res, float *y, float *scratch) {
    if (!chains(b)) return sn_error("depthwise + 1x1 convolution block: the shapes do not chain");
    if (n <= 0) return 0;
    const dwpw_plan p = plan_of(b, n);
    const conv_desc *in = b->ex ? b->ex : b->dw;
    const long isz = (long)in->h * in->w * in->cin, osz = (long)b->pw->oh * b->pw->ow * b->pw->cout;
    if (p.whole) {
#pragma omp parallel num_threads(p.threads)
        {
            const int k = omp_get_thread_num(), T = omp_get_num_threads();
            for (long i = 0; i < n; i++) {
                if (i) {
#pragma omp barrier
                }
                whole_image(b, x + i * isz, res ? res + i * osz : NULL, y + i * osz, scratch, scratch + p.efl, k, T);
            }
        }
        return 0;
    }
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
