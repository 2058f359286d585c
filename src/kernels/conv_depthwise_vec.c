/* conv_depthwise_vec.c - depthwise KxK kernels (K = 3 or 5, stride 1 or 2, channel multiplier
 * 1, any padding) on 8-float AVX2/FMA or 16-float AVX-512 vectors; contract in
 * conv_depthwise_vec.h.  conv_depthwise.c calls them row by row (and keeps its own AVX-512 3x3
 * kernels, which it prefers where it has them).
 *
 * Forward scheme: a block of NO output columns x one or two channel blocks keeps its accumulators
 * in vector registers across all kernel rows; each input column of the block's window is loaded
 * once per kernel row and fed to every output of the block whose window holds it (K, S and NO are
 * compile-time constants of always-inlined bodies, so the tap loops unroll into straight FMA
 * chains).  Channel blocks are the outer loop and columns the inner one: a pass over a row takes
 * two channel blocks (a 64-byte line of each column) and reads its K*K weight vectors from a
 * contiguous copy made once per row, so the FMAs take them as memory operands at fixed offsets;
 * two channel blocks give twice the independent accumulator chains of one at the same number of
 * input loads per FMA.  Kernel rows outside the input are skipped by the row bounds; interior
 * column blocks read without checks, border columns (E) read zeros outside [0, W).  The channel
 * tail (C not a multiple of the vector width) runs the same bodies with masked loads and stores
 * (T).  Wide 5x5 stride-1 rows run column blocks outer instead (fwd_blk: NI columns of one channel
 * block at a time, the K weight vectors of a kernel row loaded per block), faster there.
 * Backward-data stride 2 is the transposed stencil in gather form: dx column ix takes the taps kx
 * with ix + pl - kx even, so with the block start ix0 + pl even, output o of the block takes dy
 * column q0 + j through tap kx = o - 2j -- again straight FMA chains per loaded dy vector.
 * Backward-weights keeps the K accumulators of one kernel row in registers over a chunk of output
 * columns and feeds each loaded input column to every tap that reads it.
 */
#include "kernels/conv_depthwise_vec.h"
#ifdef DW_VEC
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))
#define NI 8  /* output columns of an interior block */
#define NE 4  /* output columns of a border block */
#ifndef CHUNK
#define CHUNK 32 /* output columns per accumulator flush in backward-weights */
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

#ifdef __AVX512F__
#define VW 16
typedef __m512 vf;
typedef __mmask16 vmask;
AI vmask vm_first(int cn) { return (__mmask16)((1u << cn) - 1u); }
AI vf vzero(void) { return _mm512_setzero_ps(); }
AI vf vld(const float *p) { return _mm512_loadu_ps(p); }
AI vf vldm(const float *p, vmask m) { return _mm512_maskz_loadu_ps(m, p); }
AI void vst(float *p, vf v) { _mm512_storeu_ps(p, v); }
AI void vstm(float *p, vmask m, vf v) { _mm512_mask_storeu_ps(p, m, v); }
AI vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
AI vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
AI vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
AI vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
AI vf vset(float v) { return _mm512_set1_ps(v); }
#else
#define VW 8
typedef __m256 vf;
typedef __m256i vmask;
AI vmask vm_first(int cn) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(cn), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
AI vf vzero(void) { return _mm256_setzero_ps(); }
AI vf vld(const float *p) { return _mm256_loadu_ps(p); }
AI vf vldm(const float *p, vmask m) { return _mm256_maskload_ps(p, m); }
AI void vst(float *p, vf v) { _mm256_storeu_ps(p, v); }
AI void vstm(float *p, vmask m, vf v) { _mm256_maskstore_ps(p, m, v); }
AI vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
AI vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
AI vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
AI vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
AI vf vset(float v) { return _mm256_set1_ps(v); }
#endif

/* one channel block: all VW lanes (T == 0) or the lanes of m (T == 1, the channel tail) */
AI vf ld(const float *p, vmask m, const int T) { return T ? vldm(p, m) : vld(p); }
AI void st(float *p, vmask m, vf v, const int T) {
    if (T) vstm(p, m, v);
    else vst(p, v);
}

int dwv_takes(const conv_desc *d) {
    return d->groups == d->cin && d->cout == d->cin && d->kh == d->kw && (d->kh == 3 || d->kh == 5) &&
           d->sh == d->sw && (d->sh == 1 || d->sh == 2);
}

/* ---- forward ---------------------------------------------------------------------------------- */

/* act(v) as act_value: max(v, 0) (0 for NaN), then min(v, 6) for ReLU6 */
AI vf act_v(sn_act act, vf v) {
    if (act == ACT_NONE) return v;
    v = vmax(v, vzero());
    return act == ACT_RELU6 ? vmin(v, vset(6.0f)) : v;
}

/* NO output columns (the first at input column ix0 = ox*S - pl), one channel block (x, wr, yp
 * already offset to it): kernel rows [ky0, ky1) read x rows iy0 + ky; act applied to each sum */
AI void fwd_blk(const int K, const int S, const int NO, const int E, const int T, const float *x, int W, int C,
                int iy0, int ky0, int ky1, int ix0, int no, const float *wr, vf init, int accum, sn_act act, float *yp,
                vmask m) {
    vf acc[NI], wv[5];
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++) acc[o] = (accum && (!E || o < no)) ? ld(yp + (long)o * C, m, T) : init;
    for (int ky = ky0; ky < ky1; ky++) {
        const float *row = x + (long)(iy0 + ky) * W * C;
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++) wv[kx] = ld(wr + (long)(ky * K + kx) * C, m, T);
#pragma GCC unroll 32
        for (int j = 0; j < (NO - 1) * S + K; j++) {
            const int ix = ix0 + j;
            vf xv = (!E || (unsigned)ix < (unsigned)W) ? ld(row + (long)ix * C, m, T) : vzero();
#pragma GCC unroll 8
            for (int o = 0; o < NO; o++) {
                const int kx = j - o * S;
                if (kx >= 0 && kx < K) acc[o] = vfma(xv, wv[kx], acc[o]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++)
        if (!E || o < no) st(yp + (long)o * C, m, act_v(act, acc[o]), T);
}

/* output columns [oxa, oxb) read only columns inside [0, W) */
static void interior_cols(int K, int S, int W, int pl, int OW, int *oxa, int *oxb) {
    int a = pl <= 0 ? 0 : (pl + S - 1) / S, b = W - K + pl < 0 ? 0 : (W - K + pl) / S + 1;
    *oxa = imin(a, OW), *oxb = imax(*oxa, imin(b, OW));
}

/* the output columns of the next block from ox: an interior block of NI or 4 columns when that
 * many interior ones follow (*in = 1), else a border block of 1, 2 or 4 (its first `no` stored) */
static inline int next_block(int ox, int oxa, int oxb, int end, int *in, int *nb) {
    if (ox >= oxa && ox + 4 <= oxb) {
        *in = 1;
        return *nb = ox + NI <= oxb ? NI : 4;
    }
    int no = imin(NE, (ox < oxa ? oxa : end) - ox);
    *in = 0, *nb = no >= 4 ? 4 : no >= 2 ? 2 : 1;
    return imin(no, *nb);
}

/* one column block of every channel block: NB (a compile-time NI, 4, 2 or 1) outputs, E border */
#define FWD_CBLOCKS(NB, E)                                                                                       \
    for (int c = 0; c < C; c += VW) {                                                                            \
        const vmask m = vm_first(imin(VW, C - c));                                                              \
        const vf init = (b && !accum) ? ld(b + c, m, 1) : vzero();                                              \
        if (C - c >= VW)                                                                                         \
            fwd_blk(K, S, NB, E, 0, x + c, W, C, iy0, ky0, ky1, ix0, no, wr + c, init, accum, act, yp + c, m);   \
        else fwd_blk(K, S, NB, E, 1, x + c, W, C, iy0, ky0, ky1, ix0, no, wr + c, init, accum, act, yp + c, m);  \
    }

/* one output row, column blocks outer: each column block over every channel block in turn */
AI void fwd_row(const int K, const int S, const float *x, int H, int W, int C, int pt, int pl, int oy, int OW,
                const float *wr, const float *b, sn_act act, int accum, float *yrow) {
    const int iy0 = oy * S - pt, ky0 = imax(0, -iy0), ky1 = imin(K, H - iy0);
    int oxa, oxb, in, nb;
    interior_cols(K, S, W, pl, OW, &oxa, &oxb);
    for (int ox = 0, no; ox < OW; ox += no) {
        no = next_block(ox, oxa, oxb, OW, &in, &nb);
        const int ix0 = ox * S - pl;
        float *yp = yrow + (long)ox * C;
        if (in && nb == NI) FWD_CBLOCKS(NI, 0)
        else if (in) FWD_CBLOCKS(4, 0)
        else if (nb == 4) FWD_CBLOCKS(4, 1)
        else if (nb == 2) FWD_CBLOCKS(2, 1)
        else FWD_CBLOCKS(1, 1)
    }
}
#undef FWD_CBLOCKS

/* 5x5 stride 1, column blocks outer (the rows wide enough for it, see dwv_forward_row) */
static void fwd_row_5_1(const float *x, int H, int W, int C, int pt, int pl, int oy, int OW, const float *wr,
                        const float *b, sn_act act, int accum, float *yrow) {
    fwd_row(5, 1, x, H, W, C, pt, pl, oy, OW, wr, b, act, accum, yrow);
}

/* ---- forward, channel blocks outer ------------------------------------------------------------ */

/* NO output columns from input column ix0 (E: a border block, zeros outside [0, W)) of NB = 1 or 2
 * channel blocks (T: the one block is the channel tail, lanes m), kernel rows [ky0, ky1) of the
 * input rows r[ky] (offset to the channel block), weights wl[K*K][NB*VW]; yp offset to the first
 * output; the sums in fwd_blk's order (kernel rows, then input columns) */
AI void fwd_cblk(const int K, const int S, const int NO, const int NB, const int E, const int T,
                 const float *const r[5], int W, int C, int ky0, int ky1, int ix0, const float *wl, const vf *init,
                 int accum, sn_act act, float *yp, vmask m) {
    vf acc[2][NI];
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++)
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++) acc[h][o] = accum ? ld(yp + (long)o * C + h * VW, m, T) : init[h];
#pragma GCC unroll 5
    for (int ky = 0; ky < K; ky++) {
        if (ky < ky0 || ky >= ky1) continue;
#pragma GCC unroll 32
        for (int j = 0; j < (NO - 1) * S + K; j++) {
            const int ix = ix0 + j, inside = !E || (unsigned)ix < (unsigned)W;
            vf xv[2];
#pragma GCC unroll 2
            for (int h = 0; h < NB; h++) xv[h] = inside ? ld(r[ky] + (long)ix * C + h * VW, m, T) : vzero();
#pragma GCC unroll 8
            for (int o = 0; o < NO; o++) {
                const int kx = j - o * S;
                if (kx < 0 || kx >= K) continue;
#pragma GCC unroll 2
                for (int h = 0; h < NB; h++)
                    acc[h][o] = vfma(xv[h], vld(wl + (ky * K + kx) * NB * VW + h * VW), acc[h][o]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++)
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++) st(yp + (long)o * C + h * VW, m, act_v(act, acc[h][o]), T);
}

/* channels [c, c + NB*VW) (T: the tail from c) of one output row, its input rows from iy0 with
 * kernel rows [ky0, ky1) inside: the weights copied to a contiguous block first, then the border
 * columns one at a time and the interior columns [oxa, oxb) NO at a time */
AI void fwd_crow(const int K, const int S, const int NO, const int NB, const int T, const float *x, int W, int C,
                 int iy0, int ky0, int ky1, int pl, int OW, int oxa, int oxb, const float *wr, const float *b,
                 sn_act act, int accum, float *yrow, int c) {
    const vmask m = vm_first(imin(VW, C - c));
    float wl[25 * 2 * VW] __attribute__((aligned(64)));
#pragma GCC unroll 25
    for (int k = 0; k < K * K; k++)
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++) vst(wl + (k * NB + h) * VW, ld(wr + (long)k * C + c + h * VW, m, T));
    vf init[2];
    for (int h = 0; h < NB; h++) init[h] = (b && !accum) ? ld(b + c + h * VW, m, T) : vzero();
    const float *r[5];
    for (int ky = ky0; ky < ky1; ky++) r[ky] = x + (long)(iy0 + ky) * W * C + c;
    float *yp = yrow + c;
    int ox = 0;
    for (; ox < oxa; ox++)
        fwd_cblk(K, S, 1, NB, 1, T, r, W, C, ky0, ky1, ox * S - pl, wl, init, accum, act, yp + (long)ox * C, m);
    for (; ox + NO <= oxb; ox += NO)
        fwd_cblk(K, S, NO, NB, 0, T, r, W, C, ky0, ky1, ox * S - pl, wl, init, accum, act, yp + (long)ox * C, m);
    for (; ox < oxb; ox++)
        fwd_cblk(K, S, 1, NB, 0, T, r, W, C, ky0, ky1, ox * S - pl, wl, init, accum, act, yp + (long)ox * C, m);
    for (; ox < OW; ox++)
        fwd_cblk(K, S, 1, NB, 1, T, r, W, C, ky0, ky1, ox * S - pl, wl, init, accum, act, yp + (long)ox * C, m);
}

/* one output row, channel blocks outer: pairs of channel blocks with NO2 interior columns per
 * block, then single blocks (NO1 columns) and the channel tail */
AI void fwd_crows(const int K, const int S, const int NO2, const int NO1, const float *x, int H, int W, int C,
                  int pt, int pl, int oy, int OW, const float *wr, const float *b, sn_act act, int accum,
                  float *yrow) {
    const int iy0 = oy * S - pt, ky0 = imax(0, -iy0), ky1 = imin(K, H - iy0);
    int oxa, oxb, c = 0;
    interior_cols(K, S, W, pl, OW, &oxa, &oxb);
    for (; c + 2 * VW <= C; c += 2 * VW)
        fwd_crow(K, S, NO2, 2, 0, x, W, C, iy0, ky0, ky1, pl, OW, oxa, oxb, wr, b, act, accum, yrow, c);
    for (; c + VW <= C; c += VW)
        fwd_crow(K, S, NO1, 1, 0, x, W, C, iy0, ky0, ky1, pl, OW, oxa, oxb, wr, b, act, accum, yrow, c);
    if (c < C) fwd_crow(K, S, NO1, 1, 1, x, W, C, iy0, ky0, ky1, pl, OW, oxa, oxb, wr, b, act, accum, yrow, c);
}

/* the interior columns per block (pairs of channel blocks, single blocks): the counts measured
 * fastest on AVX2 for each K and S */
#define FWD_CROWS(K, S, NO2, NO1)                                                                               \
    static __attribute__((noinline)) void fwd_crows_##K##_##S(const float *x, int H, int W, int C, int pt,     \
                                                              int pl, int oy, int OW, const float *wr,          \
                                                              const float *b, sn_act act, int accum,            \
                                                              float *yrow) {                                    \
        fwd_crows(K, S, NO2, NO1, x, H, W, C, pt, pl, oy, OW, wr, b, act, accum, yrow);                         \
    }
FWD_CROWS(3, 1, 4, 6)
FWD_CROWS(3, 2, 2, 6)
FWD_CROWS(5, 1, 3, 6)
FWD_CROWS(5, 2, 2, 6)
#undef FWD_CROWS

void dwv_forward_row(int K, int S, const float *x, int H, int W, int C, int pt, int pl, int oy, int OW,
                     const float *wr, const float *b, sn_act act, int accum, float *yrow) {
    int oxa, oxb;
    interior_cols(K, S, W, pl, OW, &oxa, &oxb);
    if (K == 5 && S == 1 && oxb - oxa >= NI) /* wide 5x5 rows: column blocks outer is faster */
        fwd_row_5_1(x, H, W, C, pt, pl, oy, OW, wr, b, act, accum, yrow);
    else if (K == 3) (S == 1 ? fwd_crows_3_1 : fwd_crows_3_2)(x, H, W, C, pt, pl, oy, OW, wr, b, act, accum, yrow);
    else (S == 1 ? fwd_crows_5_1 : fwd_crows_5_2)(x, H, W, C, pt, pl, oy, OW, wr, b, act, accum, yrow);
}

/* ---- backward-data, stride 2 ------------------------------------------------------------------ */

/* NO dx columns from ix0 (ix0 + pl even, q0 = (ix0 + pl) / 2), one channel block: nr dy rows
 * g[r] with kernel rows kyr[r]; output o takes dy column q0 + j through tap kx = o - 2j */
AI void bd2_blk(const int K, const int NO, const int E, const int T, const float *const g[3], const int kyr[3],
                int nr, int q0, int OW, int ix0, int W, const float *wr, int C, int accum, float *dxrow, vmask m) {
    vf acc[NI], wv[5];
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++) {
        const int ok = !E || (unsigned)(ix0 + o) < (unsigned)W;
        acc[o] = (accum && ok) ? ld(dxrow + (long)(ix0 + o) * C, m, T) : vzero();
    }
    for (int r = 0; r < nr; r++) {
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++) wv[kx] = ld(wr + (long)(kyr[r] * K + kx) * C, m, T);
#pragma GCC unroll 16
        for (int jj = 0; jj < (NO - 1) / 2 + (K - 1) / 2 + 1; jj++) {
            const int j = jj - (K - 1) / 2, q = q0 + j;
            vf gv = (!E || (unsigned)q < (unsigned)OW) ? ld(g[r] + (long)q * C, m, T) : vzero();
#pragma GCC unroll 8
            for (int o = 0; o < NO; o++) {
                const int kx = o - 2 * j;
                if (kx >= 0 && kx < K) acc[o] = vfma(gv, wv[kx], acc[o]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++)
        if (!E || (unsigned)(ix0 + o) < (unsigned)W) st(dxrow + (long)(ix0 + o) * C, m, acc[o], T);
}

AI void bd2_row(const int K, const float *dy, int OH, int OW, int C, int pt, int pl, int iy, int W,
                const float *wr, int accum, float *dxrow) {
    /* the kernel rows ky with iy + pt - ky even, and their dy rows */
    const int t = iy + pt;
    int kyr[3] = {0, 0, 0}, oyr[3] = {0, 0, 0}, nr = 0;
    for (int ky = t & 1; ky < K; ky += 2) {
        const int oy = (t - ky) / 2;
        if (t - ky >= 0 && oy < OH) kyr[nr] = ky, oyr[nr] = oy, nr++;
    }
    for (int ix0 = -(pl & 1); ix0 < W; ix0 += NI) {
        const int q0 = (ix0 + pl) / 2;
        const int in = ix0 >= 0 && ix0 + NI <= W && q0 - (K - 1) / 2 >= 0 && q0 + (NI - 1) / 2 < OW;
        for (int c = 0; c < C; c += VW) {
            const vmask m = vm_first(imin(VW, C - c));
            const float *g[3];
            for (int r = 0; r < 3; r++) g[r] = dy + (long)oyr[r] * OW * C + c;
            if (C - c >= VW) {
                if (in) bd2_blk(K, NI, 0, 0, g, kyr, nr, q0, OW, ix0, W, wr + c, C, accum, dxrow + c, m);
                else bd2_blk(K, NI, 1, 0, g, kyr, nr, q0, OW, ix0, W, wr + c, C, accum, dxrow + c, m);
            } else {
                if (in) bd2_blk(K, NI, 0, 1, g, kyr, nr, q0, OW, ix0, W, wr + c, C, accum, dxrow + c, m);
                else bd2_blk(K, NI, 1, 1, g, kyr, nr, q0, OW, ix0, W, wr + c, C, accum, dxrow + c, m);
            }
        }
    }
}

static void bd2_row_3(const float *dy, int OH, int OW, int C, int pt, int pl, int iy, int W, const float *wr,
                      int accum, float *dxrow) {
    bd2_row(3, dy, OH, OW, C, pt, pl, iy, W, wr, accum, dxrow);
}
static void bd2_row_5(const float *dy, int OH, int OW, int C, int pt, int pl, int iy, int W, const float *wr,
                      int accum, float *dxrow) {
    bd2_row(5, dy, OH, OW, C, pt, pl, iy, W, wr, accum, dxrow);
}

void dwv_backward_data_s2_row(int K, const float *dy, int OH, int OW, int C, int pt, int pl, int iy, int W,
                              const float *wr, int accum, float *dxrow) {
    (K == 3 ? bd2_row_3 : bd2_row_5)(dy, OH, OW, C, pt, pl, iy, W, wr, accum, dxrow);
}

/* ---- backward-weights ------------------------------------------------------------------------- */

/* NO output columns (input column ix0 = ox*S - pl), one channel block, one kernel row (x row
 * `row`): acc[o % 2][kx] += x[ix0 + o*S + kx] * dy[ox + o] -- two sets of accumulators, so 2K
 * independent FMA chains hide the FMA latency */
AI void bw_blk(const int K, const int S, const int NO, const int E, const int T, const float *row, int W, int C,
               const float *g, int ix0, int no, vf acc[2][5], vmask m) {
    vf gv[NI];
#pragma GCC unroll 8
    for (int o = 0; o < NO; o++) gv[o] = (!E || o < no) ? ld(g + (long)o * C, m, T) : vzero();
#pragma GCC unroll 32
    for (int j = 0; j < (NO - 1) * S + K; j++) {
        const int ix = ix0 + j;
        vf xv = (!E || (unsigned)ix < (unsigned)W) ? ld(row + (long)ix * C, m, T) : vzero();
#pragma GCC unroll 8
        for (int o = 0; o < NO; o++) {
            const int kx = j - o * S;
            if (kx >= 0 && kx < K) acc[o & 1][kx] = vfma(xv, gv[o], acc[o & 1][kx]);
        }
    }
}

/* one kernel row over output columns [o0, o1) of one channel block, into p's tap rows */
AI void bw_krow(const int K, const int S, const int T, const float *row, int W, int C, const float *g, int pl,
                int oxa, int oxb, int o0, int o1, float *pk, vmask m) {
    vf acc[2][5];
#pragma GCC unroll 5
    for (int kx = 0; kx < K; kx++) acc[0][kx] = ld(pk + (long)kx * C, m, T), acc[1][kx] = vzero();
    for (int ox = o0, no, in, nb; ox < o1; ox += no) {
        no = next_block(ox, imin(oxa, o1), imin(oxb, o1), o1, &in, &nb);
        const float *gp = g + (long)ox * C;
        const int ix0 = ox * S - pl;
        if (in && nb == NI) bw_blk(K, S, NI, 0, T, row, W, C, gp, ix0, no, acc, m);
        else if (in) bw_blk(K, S, 4, 0, T, row, W, C, gp, ix0, no, acc, m);
        else if (nb == 4) bw_blk(K, S, 4, 1, T, row, W, C, gp, ix0, no, acc, m);
        else if (nb == 2) bw_blk(K, S, 2, 1, T, row, W, C, gp, ix0, no, acc, m);
        else bw_blk(K, S, 1, 1, T, row, W, C, gp, ix0, no, acc, m);
    }
#pragma GCC unroll 5
    for (int kx = 0; kx < K; kx++) st(pk + (long)kx * C, m, vadd(acc[0][kx], acc[1][kx]), T);
}

AI void bw_row(const int K, const int S, const float *x, int H, int W, int C, int pt, int pl, int oy, int OW,
               const float *dyrow, int want_dw, float *p) {
    const int iy0 = oy * S - pt, ky0 = imax(0, -iy0), ky1 = imin(K, H - iy0);
    int oxa, oxb;
    interior_cols(K, S, W, pl, OW, &oxa, &oxb);
    for (int o0 = 0; o0 < OW; o0 += CHUNK) {
        const int o1 = imin(o0 + CHUNK, OW);
        for (int c = 0; c < C; c += VW) {
            const vmask m = vm_first(imin(VW, C - c));
            float *pb = p + (long)K * K * C + c;
            vf ab = ld(pb, m, 1);
            for (int ox = o0; ox < o1; ox++) ab = vadd(ab, ld(dyrow + (long)ox * C + c, m, 1));
            st(pb, m, ab, 1);
            if (!want_dw) continue;
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = x + (long)(iy0 + ky) * W * C + c;
                float *pk = p + (long)ky * K * C + c;
                if (C - c >= VW) bw_krow(K, S, 0, row, W, C, dyrow + c, pl, oxa, oxb, o0, o1, pk, m);
                else bw_krow(K, S, 1, row, W, C, dyrow + c, pl, oxa, oxb, o0, o1, pk, m);
            }
        }
    }
}

#define BW_ROW(K, S)                                                                                             \
    static void bw_row_##K##_##S(const float *x, int H, int W, int C, int pt, int pl, int oy, int OW,            \
                                 const float *dyrow, int want_dw, float *p) {                                    \
        bw_row(K, S, x, H, W, C, pt, pl, oy, OW, dyrow, want_dw, p);                                              \
    }
BW_ROW(3, 1)
BW_ROW(3, 2)
BW_ROW(5, 1)
BW_ROW(5, 2)

void dwv_backward_weights_row(int K, int S, const float *x, int H, int W, int C, int pt, int pl, int oy,
                              int OW, const float *dyrow, int want_dw, float *p) {
    if (K == 3) (S == 1 ? bw_row_3_1 : bw_row_3_2)(x, H, W, C, pt, pl, oy, OW, dyrow, want_dw, p);
    else (S == 1 ? bw_row_5_1 : bw_row_5_2)(x, H, W, C, pt, pl, oy, OW, dyrow, want_dw, p);
}
#endif
