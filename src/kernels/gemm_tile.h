/* gemm_tile.h - the register-tiled AVX2/FMA kernel of the 1x1 convolutions in the fused passes,
 * shared by conv_dwpw.c and conv_winograd.c.  Internal to src/kernels/.
 *
 * Contract: with AVX2 and FMA (GEMM_TILE defined), gemm_panel_rows computes, for one panel of
 * 8 NV columns (NV 1..3), c[M, 8 NV] = act(a[M, K] * panel + bias + res): a with row stride K,
 * panel [K][8 NV] (one panel of conv2d_dwpw_pack_1x1's layout or conv_winograd.c's), bias
 * (or NULL) offset to the panel, res (or NULL) and c offset to the panel with row stride ldc.
 * Each sum runs in K order, then the bias, the residual and the activation are applied in
 * registers before the one store: 4 rows at a time for 24 columns, else 6 (the last tile fewer).
 * Without AVX2/FMA nothing is defined; callers keep a portable path.
 */
#ifndef STYLENET_GEMM_TILE_H
#define STYLENET_GEMM_TILE_H
#include "kernels/act.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GEMM_TILE 1

/* one MR x (8 NV) tile of c = act(a * panel + bias + res): a[MR, K] (row stride K), panel[K, 8 NV]
 * (one panel, as above), bias, res and c offset to the tile (row stride ldc); the sum in K order;
 * the first npf of K steps each prefetch one cache line from pf on.  4 x 24 uses 12 accumulators, 3
 * weight vectors and a broadcast: all 16 ymm registers. */
static inline __attribute__((always_inline)) void gemm_tile(const int MR, const int NV, int K, const float *a,
                                                           const float *panel, const float *bias, const float *res,
                                                           long ldc, sn_act act, float *c, const float *pf, int npf) {
    __m256 acc[6][3];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
        if (k < npf) _mm_prefetch((const char *)(pf + 16L * k), _MM_HINT_T0);
        __m256 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(panel + (long)(k * NV + v) * 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + (long)i * K + k);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            __m256 r = acc[i][v];
            if (bias) r = _mm256_add_ps(r, _mm256_loadu_ps(bias + 8 * v));
            if (res) r = _mm256_add_ps(r, _mm256_loadu_ps(res + i * ldc + 8 * v));
            if (act != ACT_NONE) r = _mm256_max_ps(r, zero); /* max(r, 0): 0 for NaN, as act_value */
            if (act == ACT_RELU6) r = _mm256_min_ps(r, six);
            _mm256_storeu_ps(c + i * ldc + 8 * v, r);
        }
}

/* the rows of one panel of 8 NV columns: 4 at a time for 24 columns, else 6 (the last tile fewer);
 * next (or NULL): the panel to be read after this one, K * 8 NV floats of it prefetched in even
 * shares by the tiles (a GEMM of few rows, whose panels come from memory, then does not wait for
 * them) */
static inline void gemm_panel_rows(int NV, long M, int K, const float *a, const float *panel, const float *bias,
                                   const float *res, long ldc, sn_act act, float *c, const float *next) {
    const int MB = NV == 3 ? 4 : 6;
    const long lines = next ? ((long)K * NV * 8 + 15) / 16 : 0, tiles = (M + MB - 1) / MB;
    const long share = (lines + tiles - 1) / tiles;
    for (long m0 = 0; m0 < M; m0 += MB) {
        const long l0 = m0 / MB * share, left = lines - l0;
        const float *pf = next ? next + 16 * l0 : NULL;
        const int npf = (int)(left < share ? (left > 0 ? left : 0) : share);
        const float *am = a + m0 * K, *rm = res ? res + m0 * ldc : NULL;
        float *cm = c + m0 * ldc;
        const int mr = M - m0 < MB ? (int)(M - m0) : MB;
#define TILE(MR, NV) gemm_tile(MR, NV, K, am, panel, bias, rm, ldc, act, cm, pf, npf)
        if (NV == 3) {
            switch (mr) {
            case 1: TILE(1, 3); break;
            case 2: TILE(2, 3); break;
            case 3: TILE(3, 3); break;
            default: TILE(4, 3); break;
            }
        } else {
            switch (mr + 6 * (NV - 1)) {
            case 1: TILE(1, 1); break;
            case 2: TILE(2, 1); break;
            case 3: TILE(3, 1); break;
            case 4: TILE(4, 1); break;
            case 5: TILE(5, 1); break;
            case 6: TILE(6, 1); break;
            case 7: TILE(1, 2); break;
            case 8: TILE(2, 2); break;
            case 9: TILE(3, 2); break;
            case 10: TILE(4, 2); break;
            case 11: TILE(5, 2); break;
            default: TILE(6, 2); break;
            }
        }
#undef TILE
    }
}
#endif
#endif
