/* conv_depthwise.c - the depthwise backend (conv_backend.h): direct NHWC depthwise convolution
 * (groups == cin > 1, cout = m*cin); it declines every other shape, and declines when out of
 * memory for its repacked weights or partial sums.
 *
 * Output channel co reads input channel co/m.  Weights w[cout, kh, kw, 1] are repacked per call
 * to wr[kh*kw][cout] so every inner loop runs over channels with unit stride and vectorises.
 * Forward and backward-data are written in "gather" form (each output element is computed by
 * one thread, in a fixed order), parallel over (image, row).  Backward-weights accumulates
 * per output row into a small row buffer, then into a per-thread partial, and the partials are
 * summed in thread order: deterministic for a given thread count.
 * Kernels by shape, the first that applies:
 *   m == 1, 3x3, stride 1 or 2, AVX-512: the specialised kernels below (register-resident
 *     weights/accumulators, border columns peeled, no per-tap branches);
 *   m == 1, 3x3 or 5x5, stride 1 or 2, AVX2+FMA or AVX-512: conv_depthwise_vec.c's kernels,
 *     register-blocked over 8 output columns (backward-weights: their row into the thread partial);
 *   anything else (another kernel size or stride, m > 1, no AVX2): the generic loops.
 * tests/kernels/test_depthwise.c and test_conv.c check each against the reference backend.
 */
#include "kernels/conv_backend.h"
#include "kernels/conv_depthwise_vec.h"
#include "core/error.h"
#include <omp.h>
#include <string.h>

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* wr[k][c] -> wr[kh*kw-1-k][c]: the taps flipped in both axes */
static void flip_taps(const conv_desc *d, float *wr) {
    int KK = d->kh * d->kw, C = d->cout;
    for (int k = 0; k < KK / 2; k++)
        for (int c = 0; c < C; c++) {
            float t = wr[(long)k * C + c];
            wr[(long)k * C + c] = wr[(long)(KK - 1 - k) * C + c], wr[(long)(KK - 1 - k) * C + c] = t;
        }
}

static float *repack(const conv_desc *d, const float *w) {
    int KK = d->kh * d->kw, C = d->cout;
    float *wr = sn_alloc(sizeof(float) * KK * C, "depthwise weight repack");
    if (wr)
        for (int co = 0; co < C; co++)
            for (int k = 0; k < KK; k++) wr[(long)k * C + co] = w[(long)co * KK + k];
    return wr;
}

/* Inner kernels for m == 1, per block of 16 channels: the sum over the valid taps is kept in
 * one 16-float accumulator, so each tap costs a load of x (or dy), a load of w and one FMA.
 * AVX-512: one zmm register with a lane mask for the channel tail; otherwise plain loops. */
#ifdef __AVX512F__
#include <immintrin.h>
typedef __m512 vacc;
#define VMASK(cn) ((__mmask16)((1u << (cn)) - 1u))
#define VLOAD(p, cn) _mm512_maskz_loadu_ps(VMASK(cn), (p))
#define VZERO() _mm512_setzero_ps()
#define VFMA(acc, a, b, cn) ((acc) = _mm512_fmadd_ps(VLOAD(a, cn), VLOAD(b, cn), (acc)))
#define VSTORE(p, acc, cn) _mm512_mask_storeu_ps((p), VMASK(cn), (acc))
#else
typedef struct { float v[16]; } vacc;
static inline vacc vload(const float *p, int cn) {
    vacc a = {{0}};
    for (int j = 0; j < cn; j++) a.v[j] = p[j];
    return a;
}
static inline void vfma(vacc *acc, const float *a, const float *b, int cn) {
    for (int j = 0; j < cn; j++) acc->v[j] += a[j] * b[j];
}
static inline void vstore(float *p, vacc a, int cn) {
    for (int j = 0; j < cn; j++) p[j] = a.v[j];
}
#define VLOAD(p, cn) vload((p), (cn))
#define VZERO() ((vacc){{0}})
#define VFMA(acc, a, b, cn) vfma(&(acc), (a), (b), (cn))
#define VSTORE(p, acc, cn) vstore((p), (acc), (cn))
#endif

/* ---- 3x3, stride 1 or 2, m == 1, AVX-512: the hot MobileNet case -------------------------------
 * Per 16-channel block the nine weight vectors stay in zmm registers (backward-weights: the nine
 * accumulators, flushed to the thread partial per row chunk).  Rows outside the image get
 * an all-zero load mask (their pointer is clamped to a valid row), so there is no per-tap branch;
 * columns are split into left/right border columns (per-tap masks) and an interior run handled
 * four output columns at a time, so loaded input vectors are reused across the kx taps.
 * Backward-data for stride 1 is the same kernel on dy with flipped weights, accumulating into dx;
 * stride 2 has its own gather kernel (the two column phases of the transposed stencil).
 * Loop order: rows of <= DW_WIDE channels (and stride-2 rows of <= 3*DW_WIDE) put the channel
 * blocks innermost so memory is walked in address order (measured 10-30% faster for C = 32..96);
 * wider rows keep one channel block's weights in registers along the whole row. */
#ifdef __AVX512F__
#define DW_FAST 1
#ifndef DW_WIDE
#define DW_WIDE 64
#endif
#define AI static inline __attribute__((always_inline))
static inline __mmask16 cmask(int cn) { return (__mmask16)((1u << cn) - 1u); }
AI __m512 ldm(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
static inline int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* interior output columns [ox0, ox1) of one row and channel block (all taps in-bounds):
 * a[o] = init + sum_{r,kx} x[r][(ox+o)*S - pl + kx] * w[r*3+kx] */
AI void fwd3_interior(const float *const rp[3], const __mmask16 rm[3], const __m512 wv[9], __m512 init,
                      int accum, float *yrow, int ox0, int ox1, int S, int pl, int C, __mmask16 cm) {
    int ox = ox0;
    for (; ox + 4 <= ox1; ox += 4) {
        long ix = (long)ox * S - pl;
        __m512 a0, a1, a2, a3;
        float *yp = yrow + (long)ox * C;
        if (accum) {
            a0 = ldm(yp, cm), a1 = ldm(yp + C, cm), a2 = ldm(yp + 2 * C, cm), a3 = ldm(yp + 3 * C, cm);
        } else {
            a0 = a1 = a2 = a3 = init;
        }
        #pragma GCC unroll 3
        for (int r = 0; r < 3; r++) {
            const float *p = rp[r] + ix * C;
            __mmask16 m = rm[r];
            __m512 xv[3 * 4 + 3];
#pragma GCC unroll 16
            for (int j = 0; j < 3 * S + 3; j++) xv[j] = ldm(p + (long)j * C, m);
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                __m512 wk = wv[r * 3 + kx];
                a0 = _mm512_fmadd_ps(xv[kx], wk, a0);
                a1 = _mm512_fmadd_ps(xv[S + kx], wk, a1);
                a2 = _mm512_fmadd_ps(xv[2 * S + kx], wk, a2);
                a3 = _mm512_fmadd_ps(xv[3 * S + kx], wk, a3);
            }
        }
        _mm512_mask_storeu_ps(yp, cm, a0);
        _mm512_mask_storeu_ps(yp + C, cm, a1);
        _mm512_mask_storeu_ps(yp + 2 * C, cm, a2);
        _mm512_mask_storeu_ps(yp + 3 * C, cm, a3);
    }
    for (; ox < ox1; ox++) {
        long ix = (long)ox * S - pl;
        float *yp = yrow + (long)ox * C;
        __m512 a = accum ? ldm(yp, cm) : init;
        #pragma GCC unroll 3
        for (int r = 0; r < 3; r++) {
            const float *p = rp[r] + ix * C;
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) a = _mm512_fmadd_ps(ldm(p + (long)kx * C, rm[r]), wv[r * 3 + kx], a);
        }
        _mm512_mask_storeu_ps(yp, cm, a);
    }
}

/* one border output column: per-tap masks, pointers clamped into the row */
static void fwd3_border(const float *const rp[3], const __mmask16 rm[3], const __m512 wv[9], __m512 init,
                        int accum, float *yrow, int ox, int S, int pl, int W, int C, __mmask16 cm) {
    float *yp = yrow + (long)ox * C;
    __m512 a = accum ? ldm(yp, cm) : init;
    #pragma GCC unroll 3
    for (int kx = 0; kx < 3; kx++) {
        int ix = ox * S - pl + kx;
        __mmask16 cmk = (ix >= 0 && ix < W) ? (__mmask16)0xffff : 0;
        long off = (long)iclamp(ix, 0, W - 1) * C;
        #pragma GCC unroll 3
        for (int r = 0; r < 3; r++) a = _mm512_fmadd_ps(ldm(rp[r] + off, rm[r] & cmk), wv[r * 3 + kx], a);
    }
    _mm512_mask_storeu_ps(yp, cm, a);
}

/* y (one image) rows [oy0, oy1) of a 3x3 stride-S correlation of x (H x W) with wr[9][C] (channel
 * innermost), top/left padding pt/pl (any sign), output width OW.  accum: y += instead of
 * y = b (+ b only when !accum, b may be NULL). */
AI void fwd3_rows(const float *xi, int H, int W, int C, int S, int pt, int pl, int oy0, int oy1, int OW,
                  const float *wr, const float *b, int accum, float *yi) {
    /* interior columns: ox*S - pl >= 0 and ox*S - pl + 2 <= W - 1 */
    int oxa = pl <= 0 ? 0 : (pl + S - 1) / S, oxb = W - 3 + pl < 0 ? 0 : (W - 3 + pl) / S + 1;
    oxa = imin(oxa, OW), oxb = imax(oxa, imin(oxb, OW));
    for (int oy = oy0; oy < oy1; oy++) {
        float *yrow = yi + (long)oy * OW * C;
        int iy0 = oy * S - pt;
        const float *rp0[3];
        __mmask16 rv[3];
        #pragma GCC unroll 3
        for (int r = 0; r < 3; r++) {
            int iy = iy0 + r;
            rv[r] = (iy >= 0 && iy < H) ? 0xffff : 0;
            rp0[r] = xi + (long)iclamp(iy, 0, H - 1) * W * C;
        }
#define FWD3_CBLOCKS(BODY)                                                                                        \
    for (int c0 = 0; c0 < C; c0 += 16) {                                                                          \
        __mmask16 cm = cmask(imin(16, C - c0));                                                                   \
        __m512 wv[9];                                                                                             \
        for (int k = 0; k < 9; k++) wv[k] = ldm(wr + (long)k * C + c0, cm);                                       \
        __m512 init = (b && !accum) ? ldm(b + c0, cm) : _mm512_setzero_ps();                                      \
        const float *rp[3] = {rp0[0] + c0, rp0[1] + c0, rp0[2] + c0};                                             \
        __mmask16 rm[3] = {rv[0] & cm, rv[1] & cm, rv[2] & cm};                                                   \
        BODY;                                                                                                     \
    }
        if (C > DW_WIDE && (S == 1 || C > 3 * DW_WIDE)) { /* wide rows: weights stay in registers */
            FWD3_CBLOCKS({
                for (int ox = 0; ox < oxa; ox++) fwd3_border(rp, rm, wv, init, accum, yrow + c0, ox, S, pl, W, C, cm);
                fwd3_interior(rp, rm, wv, init, accum, yrow + c0, oxa, oxb, S, pl, C, cm);
                for (int ox = oxb; ox < OW; ox++) fwd3_border(rp, rm, wv, init, accum, yrow + c0, ox, S, pl, W, C, cm);
            })
            continue;
        }
        /* narrow rows (<= 4 channel blocks): channel blocks innermost, so memory is walked in order */
        for (int ox = 0; ox < oxa; ox++) FWD3_CBLOCKS(fwd3_border(rp, rm, wv, init, accum, yrow + c0, ox, S, pl, W, C, cm))
        int ox = oxa;
        for (; ox + 4 <= oxb; ox += 4) FWD3_CBLOCKS(fwd3_interior(rp, rm, wv, init, accum, yrow + c0, ox, ox + 4, S, pl, C, cm))
        if (ox < oxb) FWD3_CBLOCKS(fwd3_interior(rp, rm, wv, init, accum, yrow + c0, ox, oxb, S, pl, C, cm))
        for (ox = oxb; ox < OW; ox++) FWD3_CBLOCKS(fwd3_border(rp, rm, wv, init, accum, yrow + c0, ox, S, pl, W, C, cm))
#undef FWD3_CBLOCKS
    }
}
static void fwd3_rows_s1(const float *xi, int H, int W, int C, int pt, int pl, int oy0, int oy1, int OW,
                         const float *wr, const float *b, int accum, float *yi) {
    fwd3_rows(xi, H, W, C, 1, pt, pl, oy0, oy1, OW, wr, b, accum, yi);
}
static void fwd3_rows_s2(const float *xi, int H, int W, int C, int pt, int pl, int oy0, int oy1, int OW,
                         const float *wr, const float *b, int accum, float *yi) {
    fwd3_rows(xi, H, W, C, 2, pt, pl, oy0, oy1, OW, wr, b, accum, yi);
}

/* backward-data, 3x3 stride 2, one dx row iy of one image: dx[ix] += sum over (ky, kx) with
 * iy + pt - ky and ix + pl - kx even of dy[(iy+pt-ky)/2, (ix+pl-kx)/2] * w[ky, kx].
 * With t = ix + pl: t = 2q takes dy[q] * w[.,0] + dy[q-1] * w[.,2], t = 2q+1 takes dy[q] * w[.,1]. */
AI void bd3s2_pair(const float *const gp[2], const __mmask16 gm[2], const __m512 wv[2][3], float *dxr, int q,
                   int pl, int W, int OW, int C, __mmask16 cm, int edge) {
    int ixa = 2 * q - pl, ixb = ixa + 1;
    __mmask16 ma = cm, mb = cm, m0 = 0xffff, m1 = 0xffff;
    long oa = (long)ixa * C, ob = (long)ixb * C, g0 = (long)q * C, g1 = (long)(q - 1) * C;
    if (edge) {
        ma = (ixa >= 0 && ixa < W) ? cm : 0, mb = (ixb >= 0 && ixb < W) ? cm : 0;
        m0 = (q >= 0 && q < OW) ? 0xffff : 0, m1 = (q - 1 >= 0 && q - 1 < OW) ? 0xffff : 0;
        oa = (long)iclamp(ixa, 0, W - 1) * C, ob = (long)iclamp(ixb, 0, W - 1) * C;
        g0 = (long)iclamp(q, 0, OW - 1) * C, g1 = (long)iclamp(q - 1, 0, OW - 1) * C;
    }
    __m512 a = ldm(dxr + oa, ma), bb = ldm(dxr + ob, mb);
    #pragma GCC unroll 2
    for (int r = 0; r < 2; r++) {
        __m512 y0 = ldm(gp[r] + g0, gm[r] & m0), y1 = ldm(gp[r] + g1, gm[r] & m1);
        a = _mm512_fmadd_ps(y0, wv[r][0], a);
        a = _mm512_fmadd_ps(y1, wv[r][2], a);
        bb = _mm512_fmadd_ps(y0, wv[r][1], bb);
    }
    _mm512_mask_storeu_ps(dxr + oa, ma, a);
    _mm512_mask_storeu_ps(dxr + ob, mb, bb);
}

static void bd3s2_row(const conv_desc *d, const float *dyi, const float *wr, int iy, float *dxrow) {
    int C = d->cout, W = d->w, OW = d->ow, OH = d->oh, pl = d->pl, t = iy + d->pt;
    /* dy rows and weight rows: t even -> ky 0 (oy t/2) and ky 2 (oy t/2 - 1); odd -> ky 1 */
    int oyr[2], kyr[2];
    if ((t & 1) == 0) oyr[0] = t / 2, kyr[0] = 0, oyr[1] = t / 2 - 1, kyr[1] = 2;
    else oyr[0] = (t - 1) / 2, kyr[0] = 1, oyr[1] = -1, kyr[1] = 1;
    /* q covers ix in [0, W): 2q - pl + 1 >= 0 and 2q - pl <= W - 1 */
    int qlo = pl / 2, qhi = (W - 1 + pl) / 2; /* inclusive; pl >= 0 */
    /* interior q: ixa >= 0, ixb <= W-1, q - 1 >= 0, q <= OW - 1 */
    int ia = imax(imax(1, (pl + 1) / 2), qlo);
    int ib = W - 2 + pl < 0 ? -1 : imin(imin(OW - 1, (W - 2 + pl) / 2), qhi); /* inclusive */
    for (int c0 = 0; c0 < C; c0 += 16) {
        __mmask16 cm = cmask(imin(16, C - c0));
        const float *gp[2];
        __mmask16 gm[2];
        __m512 wv[2][3];
        #pragma GCC unroll 2
        for (int r = 0; r < 2; r++) {
            int ok = oyr[r] >= 0 && oyr[r] < OH;
            gm[r] = ok ? cm : 0;
            gp[r] = dyi + (long)iclamp(oyr[r], 0, OH - 1) * OW * C + c0;
            for (int kx = 0; kx < 3; kx++) wv[r][kx] = ldm(wr + (long)(kyr[r] * 3 + kx) * C + c0, ok ? cm : 0);
        }
        float *dxr = dxrow + c0;
        int q = qlo;
        for (; q <= qhi && q < ia; q++) bd3s2_pair(gp, gm, wv, dxr, q, pl, W, OW, C, cm, 1);
        for (; q <= ib; q++) bd3s2_pair(gp, gm, wv, dxr, q, pl, W, OW, C, cm, 0);
        for (; q <= qhi; q++) bd3s2_pair(gp, gm, wv, dxr, q, pl, W, OW, C, cm, 1);
    }
}

/* backward-weights, 3x3 stride S: output columns [oxs, oxe) of one output row, one channel block,
 * accumulated into p[k*C + c] (k < 9) and p[9*C + c] (bias).  oxa/oxb: the interior columns. */
AI void bw3_blk(const float *const rp[3], const __mmask16 rm[3], const float *g, int W, int C, int S, int pl,
                int oxa, int oxb, int oxs, int oxe, int want_dw, float *p, __mmask16 cm) {
    __m512 acc[9], ab = ldm(p + 9L * C, cm);
    if (!want_dw) {
        for (int ox = oxs; ox < oxe; ox++) ab = _mm512_add_ps(ab, ldm(g + (long)ox * C, cm));
        _mm512_mask_storeu_ps(p + 9L * C, cm, ab);
        return;
    }
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++) acc[k] = ldm(p + (long)k * C, cm);
    int ox = oxs, ia = imax(oxs, oxa), ib = imin(oxe, oxb);
    for (int pass = 0; pass < 2; pass++) {
        int end = pass == 0 ? imin(ia, oxe) : oxe;
        for (; ox < end; ox++) { /* border columns (pass 0: left, pass 1: the rest after the interior) */
            __m512 gv = ldm(g + (long)ox * C, cm);
            ab = _mm512_add_ps(ab, gv);
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                int ix = ox * S - pl + kx;
                __mmask16 mk = (ix >= 0 && ix < W) ? (__mmask16)0xffff : 0;
                long off = (long)iclamp(ix, 0, W - 1) * C;
#pragma GCC unroll 3
                for (int r = 0; r < 3; r++)
                    acc[r * 3 + kx] = _mm512_fmadd_ps(ldm(rp[r] + off, rm[r] & mk), gv, acc[r * 3 + kx]);
            }
        }
        if (pass == 1) break;
        for (; ox + 2 <= ib; ox += 2) {
            __m512 g0 = ldm(g + (long)ox * C, cm), g1 = ldm(g + (long)(ox + 1) * C, cm);
            ab = _mm512_add_ps(ab, _mm512_add_ps(g0, g1));
            long ix = (long)ox * S - pl;
#pragma GCC unroll 3
            for (int r = 0; r < 3; r++) {
                const float *pr = rp[r] + ix * C;
                __m512 xv[5];
#pragma GCC unroll 8
                for (int j = 0; j < S + 3; j++) xv[j] = ldm(pr + (long)j * C, rm[r]);
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) {
                    acc[r * 3 + kx] = _mm512_fmadd_ps(xv[kx], g0, acc[r * 3 + kx]);
                    acc[r * 3 + kx] = _mm512_fmadd_ps(xv[S + kx], g1, acc[r * 3 + kx]);
                }
            }
        }
    }
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++) _mm512_mask_storeu_ps(p + (long)k * C, cm, acc[k]);
    _mm512_mask_storeu_ps(p + 9L * C, cm, ab);
}

/* backward-weights, one output row oy of one image.  Narrow rows go in chunks of 8 output
 * columns with the channel blocks inside (address order); wide rows one channel block at a time. */
AI void bw3_row(const float *xi, const float *dyrow, int H, int W, int C, int S, int pt, int pl, int oy, int OW,
                int want_dw, float *p) {
    int oxa = pl <= 0 ? 0 : (pl + S - 1) / S, oxb = W - 3 + pl < 0 ? 0 : (W - 3 + pl) / S + 1;
    oxa = imin(oxa, OW), oxb = imax(oxa, imin(oxb, OW));
    int iy0 = oy * S - pt, chunk = (C > DW_WIDE && (S == 1 || C > 3 * DW_WIDE)) ? OW : 8;
    const float *rp0[3];
    __mmask16 rv[3];
    for (int r = 0; r < 3; r++) {
        int iy = iy0 + r;
        rv[r] = (iy >= 0 && iy < H) ? 0xffff : 0;
        rp0[r] = xi + (long)iclamp(iy, 0, H - 1) * W * C;
    }
    for (int o0 = 0; o0 < OW; o0 += chunk)
        for (int c0 = 0; c0 < C; c0 += 16) {
            __mmask16 cm = cmask(imin(16, C - c0));
            const float *rp[3] = {rp0[0] + c0, rp0[1] + c0, rp0[2] + c0};
            __mmask16 rm[3] = {rv[0] & cm, rv[1] & cm, rv[2] & cm};
            bw3_blk(rp, rm, dyrow + c0, W, C, S, pl, oxa, oxb, o0, imin(o0 + chunk, OW), want_dw, p + c0, cm);
        }
}
static void bw3_row_s1(const float *xi, const float *dyrow, int H, int W, int C, int pt, int pl, int oy, int OW,
                       int want_dw, float *p) {
    bw3_row(xi, dyrow, H, W, C, 1, pt, pl, oy, OW, want_dw, p);
}
static void bw3_row_s2(const float *xi, const float *dyrow, int H, int W, int C, int pt, int pl, int oy, int OW,
                       int want_dw, float *p) {
    bw3_row(xi, dyrow, H, W, C, 2, pt, pl, oy, OW, want_dw, p);
}
#endif

#ifdef DW_FAST
/* the specialised path applies: m == 1, 3x3, equal strides 1 or 2 */
static int fast3(const conv_desc *d) {
    return d->cout == d->cin && d->kh == 3 && d->kw == 3 && d->sh == d->sw && (d->sh == 1 || d->sh == 2);
}
#endif

/* one output row: y[ox, c] = b[c] + sum over valid taps x * w */
static void dw_row_fwd_m1(const conv_desc *d, const float *xi, const float *wr, const float *b, int oy, float *yrow) {
    int C = d->cout, iy0 = oy * d->sh - d->pt;
    int ky0 = imax(0, -iy0), ky1 = imin(d->kh, d->h - iy0);
    for (int c0 = 0; c0 < C; c0 += 16) {
        int cn = imin(16, C - c0);
        for (int ox = 0; ox < d->ow; ox++) {
            int ix0 = ox * d->sw - d->pl, kx0 = imax(0, -ix0), kx1 = imin(d->kw, d->w - ix0);
            vacc acc = b ? VLOAD(b + c0, cn) : VZERO();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *xp = xi + ((long)(iy0 + ky) * d->w + ix0) * C + c0;
                const float *wp = wr + (long)ky * d->kw * C + c0;
                for (int kx = kx0; kx < kx1; kx++) VFMA(acc, xp + (long)kx * C, wp + (long)kx * C, cn);
            }
            VSTORE(yrow + (long)ox * C + c0, acc, cn);
        }
    }
}

/* one input row of dx, gathered: dx[ix, c] += sum over the outputs whose window holds (iy, ix)
 * of dy * w.  oxs[ix * kw + kx] is the output column for (ix, kx) or -1 (precomputed per call,
 * so the inner loops do no integer division). */
static void dw_row_bwd_data_m1(const conv_desc *d, const float *dyi, const float *wr, int iy, const int *oxs,
                               float *dxrow) {
    int C = d->cout, oys[64], nky = imin(d->kh, 64);
    for (int ky = 0; ky < nky; ky++) {
        int t = iy + d->pt - ky;
        oys[ky] = (t < 0 || t % d->sh || t / d->sh >= d->oh) ? -1 : t / d->sh;
    }
    for (int c0 = 0; c0 < C; c0 += 16) {
        int cn = imin(16, C - c0);
        for (int ix = 0; ix < d->w; ix++) {
            vacc acc = VLOAD(dxrow + (long)ix * C + c0, cn);
            const int *ox = oxs + (long)ix * d->kw;
            for (int ky = 0; ky < nky; ky++) {
                if (oys[ky] < 0) continue;
                const float *gr = dyi + (long)oys[ky] * d->ow * C + c0;
                const float *wp = wr + (long)ky * d->kw * C + c0;
                for (int kx = 0; kx < d->kw; kx++)
                    if (ox[kx] >= 0) VFMA(acc, gr + (long)ox[kx] * C, wp + (long)kx * C, cn);
            }
            VSTORE(dxrow + (long)ix * C + c0, acc, cn);
        }
    }
}

float *conv2d_depthwise_repack(const conv_desc *d, const float *w) { return repack(d, w); }

void conv2d_depthwise_forward_row(const conv_desc *d, const float *xi, const float *wr, const float *b, int oy,
                                  float *yrow) {
    const int C = d->cout, Ci = d->cin, m = C / Ci;
#ifdef DW_FAST
    if (fast3(d)) {
        /* fwd3_rows_* write row oy of an image-sized output */
        (d->sh == 1 ? fwd3_rows_s1 : fwd3_rows_s2)(xi, d->h, d->w, C, d->pt, d->pl, oy, oy + 1, d->ow, wr, b, 0,
                                                    yrow - (long)oy * d->ow * C);
        act_apply(d->act, (long)d->ow * C, yrow); /* the row is in cache */
        return;
    }
#endif
#ifdef DW_VEC
    if (dwv_takes(d)) {
        dwv_forward_row(d->kh, d->sh, xi, d->h, d->w, C, d->pt, d->pl, oy, d->ow, wr, b, d->act, 0, yrow);
        return;
    }
#endif
    if (m == 1) {
        dw_row_fwd_m1(d, xi, wr, b, oy, yrow);
        act_apply(d->act, (long)d->ow * C, yrow);
        return;
    }
    int iy0 = oy * d->sh - d->pt, ky0 = imax(0, -iy0), ky1 = imin(d->kh, d->h - iy0);
    for (int ox = 0; ox < d->ow; ox++) {
        float *yp = yrow + (long)ox * C;
        int ix0 = ox * d->sw - d->pl, kx0 = imax(0, -ix0), kx1 = imin(d->kw, d->w - ix0);
        for (int c = 0; c < C; c++) yp[c] = b ? b[c] : 0.0f;
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *xp = xi + ((long)(iy0 + ky) * d->w + ix0 + kx) * Ci;
                const float *wk = wr + (long)(ky * d->kw + kx) * C;
                for (int ci = 0; ci < Ci; ci++)
                    for (int j = 0; j < m; j++) yp[ci * m + j] += xp[ci] * wk[ci * m + j];
            }
    }
    act_apply(d->act, (long)d->ow * C, yrow);
}

int conv2d_depthwise_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    if (n <= 0 || !conv_is_depthwise(d)) return 0;
    float *wr = repack(d, w);
    if (!wr) return 0;
    const long rows = (long)n * d->oh, isz = (long)d->h * d->w * d->cin;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++)
        conv2d_depthwise_forward_row(d, x + (r / d->oh) * isz, wr, b, (int)(r % d->oh), y + r * d->ow * d->cout);
    sn_free(wr);
    return n;
}

static void mask_row(const conv_desc *d, sn_act act, const float *x, float *dx, long r) {
    if (act) act_mask((long)d->w * d->cin, act, x + r * d->w * d->cin, dx + r * d->w * d->cin);
}

/* accumulate 0: dx is overwritten, each row cleared just before it is summed (while in cache),
 * instead of a separate pass clearing all of dx.  act: each finished row is then masked by the
 * backward of the activation that produced x (act_passes at x), the pass its node would make */
static int backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx, int accumulate,
                         sn_act act, const float *x) {
    if (n <= 0 || !conv_is_depthwise(d)) return 0;
    if (!dx) return n;
    float *wr = repack(d, w);
    if (!wr) return 0;
    int C = d->cout, Ci = d->cin, m = C / Ci;
    long rows = (long)n * d->h;
#ifdef DW_FAST
    if (fast3(d)) {
        long isz = (long)d->h * d->w * C, osz = (long)d->oh * d->ow * C;
        if (d->sh == 1) flip_taps(d, wr); /* the forward stencil on dy with the weights flipped */
#pragma omp parallel for schedule(static)
        for (long r = 0; r < rows; r++) {
            int i = (int)(r / d->h), iy = (int)(r % d->h);
            if (d->sh == 1) {
                fwd3_rows_s1(dy + i * osz, d->oh, d->ow, C, 2 - d->pt, 2 - d->pl, iy, iy + 1, d->w, wr, NULL,
                             accumulate, dx + i * isz);
            } else {
                if (!accumulate) memset(dx + r * d->w * C, 0, sizeof(float) * d->w * C);
                bd3s2_row(d, dy + i * osz, wr, iy, dx + r * d->w * C);
            }
            mask_row(d, act, x, dx, r);
        }
        sn_free(wr);
        return n;
    }
#endif
#ifdef DW_VEC
    if (dwv_takes(d)) {
        long osz = (long)d->oh * d->ow * C;
        int K = d->kh;
        if (d->sh == 1) flip_taps(d, wr); /* the forward stencil on dy with the weights flipped */
#pragma omp parallel for schedule(static)
        for (long r = 0; r < rows; r++) {
            int i = (int)(r / d->h), iy = (int)(r % d->h);
            float *dxrow = dx + r * d->w * C;
            if (d->sh == 1)
                dwv_forward_row(K, 1, dy + i * osz, d->oh, d->ow, C, K - 1 - d->pt, K - 1 - d->pl, iy, d->w, wr, NULL,
                                ACT_NONE, accumulate, dxrow);
            else
                dwv_backward_data_s2_row(K, dy + i * osz, d->oh, d->ow, C, d->pt, d->pl, iy, d->w, wr, accumulate,
                                         dxrow);
            mask_row(d, act, x, dx, r);
        }
        sn_free(wr);
        return n;
    }
#endif
    int *oxs = d->kh <= 64 ? sn_alloc(sizeof(int) * d->w * d->kw, "depthwise column table") : NULL;
    if (oxs)
        for (int ix = 0; ix < d->w; ix++)
            for (int kx = 0; kx < d->kw; kx++) {
                int u = ix + d->pl - kx;
                oxs[ix * d->kw + kx] = (u < 0 || u % d->sw || u / d->sw >= d->ow) ? -1 : u / d->sw;
            }
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r / d->h), iy = (int)(r % d->h);
        const float *dyi = dy + (long)i * d->oh * d->ow * C;
        if (!accumulate) memset(dx + r * d->w * Ci, 0, sizeof(float) * d->w * Ci);
        if (m == 1 && oxs) {
            dw_row_bwd_data_m1(d, dyi, wr, iy, oxs, dx + r * d->w * Ci);
            mask_row(d, act, x, dx, r);
            continue;
        }
        for (int ix = 0; ix < d->w; ix++) {
            float *restrict dxp = dx + (r * d->w + ix) * Ci;
            for (int ky = 0; ky < d->kh; ky++) {
                int t = iy + d->pt - ky;
                if (t < 0 || t % d->sh || t / d->sh >= d->oh) continue;
                int oy = t / d->sh;
                for (int kx = 0; kx < d->kw; kx++) {
                    int u = ix + d->pl - kx;
                    if (u < 0 || u % d->sw || u / d->sw >= d->ow) continue;
                    int ox = u / d->sw;
                    const float *restrict dyp = dyi + ((long)oy * d->ow + ox) * C;
                    const float *restrict wk = wr + (long)(ky * d->kw + kx) * C;
                    if (m == 1) {
                        for (int c = 0; c < C; c++) dxp[c] += dyp[c] * wk[c];
                    } else {
                        for (int ci = 0; ci < Ci; ci++) {
                            float s = 0;
                            for (int j = 0; j < m; j++) s += dyp[ci * m + j] * wk[ci * m + j];
                            dxp[ci] += s;
                        }
                    }
                }
            }
        }
        mask_row(d, act, x, dx, r);
    }
    sn_free(oxs);
    sn_free(wr);
    return n;
}

int conv2d_depthwise_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    return backward_data(d, n, dy, w, dx, 1, ACT_NONE, NULL);
}

int conv2d_depthwise_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx,
                                       sn_act act, const float *x) {
    return backward_data(d, n, dy, w, dx, 0, act, x);
}

/* backward-weights of output rows [r0, r1) (image-major), any depthwise shape: each row summed
 * into the row buffer rp, then added to the thread partial p (both (kh*kw + 1) x cout floats) */
static void bw_rows_generic(const conv_desc *d, const float *x, const float *dy, long r0, long r1, int want_dw,
                            float *p, float *rp) {
    int C = d->cout, Ci = d->cin, m = C / Ci, KK = d->kh * d->kw;
    long psz = (long)(KK + 1) * C;
    for (long r = r0; r < r1; r++) {
        int i = (int)(r / d->oh), oy = (int)(r % d->oh);
        const float *xi = x + (long)i * d->h * d->w * Ci;
        int iy0 = oy * d->sh - d->pt;
        int ky0 = imax(0, -iy0), ky1 = imin(d->kh, d->h - iy0);
        memset(rp, 0, sizeof(float) * psz);
        for (int ox = 0; ox < d->ow; ox++) {
            const float *restrict dyp = dy + (r * d->ow + ox) * C;
            int ix0 = ox * d->sw - d->pl;
            int kx0 = imax(0, -ix0), kx1 = imin(d->kw, d->w - ix0);
            float *restrict pb = rp + (long)KK * C;
            for (int c = 0; c < C; c++) pb[c] += dyp[c];
            if (!want_dw) continue;
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = kx0; kx < kx1; kx++) {
                    const float *restrict xp = xi + ((long)(iy0 + ky) * d->w + ix0 + kx) * Ci;
                    float *restrict pk = rp + (long)(ky * d->kw + kx) * C;
                    if (m == 1) {
                        for (int c = 0; c < C; c++) pk[c] += dyp[c] * xp[c];
                    } else {
                        for (int ci = 0; ci < Ci; ci++)
                            for (int j = 0; j < m; j++) pk[ci * m + j] += dyp[ci * m + j] * xp[ci];
                    }
                }
        }
        for (long e = 0; e < psz; e++) p[e] += rp[e];
    }
}

int conv2d_depthwise_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw,
                                      float *db) {
    if (n <= 0 || !conv_is_depthwise(d)) return 0;
    if (!dw && !db) return n;
    int C = d->cout, KK = d->kh * d->kw;
    long rows = (long)n * d->oh, psz = (long)(KK + 1) * C; /* KK weight rows + 1 bias row */
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    float *part = sn_alloc(sizeof(float) * nt * 2 * psz, "depthwise weight-gradient partials");
    if (!part) return 0;
#pragma omp parallel num_threads(nt)
    {
        int th = omp_get_thread_num(), T = omp_get_num_threads();
        float *p = part + (long)th * 2 * psz, *rp = p + psz; /* thread partial, row buffer */
        memset(p, 0, sizeof(float) * psz);
#ifdef DW_FAST
        if (fast3(d)) {
            for (long r = rows * th / T; r < rows * (th + 1) / T; r++) {
                int i = (int)(r / d->oh), oy = (int)(r % d->oh);
                const float *xi = x + (long)i * d->h * d->w * C, *dyr = dy + r * d->ow * C;
                (d->sh == 1 ? bw3_row_s1 : bw3_row_s2)(xi, dyr, d->h, d->w, C, d->pt, d->pl, oy, d->ow, dw != NULL, p);
            }
        } else
#endif
#ifdef DW_VEC
        if (dwv_takes(d)) {
            for (long r = rows * th / T; r < rows * (th + 1) / T; r++) {
                int i = (int)(r / d->oh), oy = (int)(r % d->oh);
                dwv_backward_weights_row(d->kh, d->sh, x + (long)i * d->h * d->w * C, d->h, d->w, C, d->pt, d->pl, oy,
                                         d->ow, dy + r * d->ow * C, dw != NULL, p);
            }
        } else
#endif
        bw_rows_generic(d, x, dy, rows * th / T, rows * (th + 1) / T, dw != NULL, p, rp);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int co = 0; co < C; co++) {
            for (int k = 0; k <= KK; k++) {
                float s = part[(long)k * C + co];
                for (int u = 1; u < T; u++) s += part[(long)u * 2 * psz + (long)k * C + co];
                if (k < KK) {
                    if (dw) dw[(long)co * KK + k] += s;
                } else if (db) {
                    db[co] += s;
                }
            }
        }
    }
    sn_free(part);
    return n;
}
