/* conv_depthwise_vec.h - the vector depthwise kernels (conv_depthwise_vec.c) that
 * conv_depthwise.c's passes call row by row.  Internal to src/kernels/.
 *
 * Contract: channel multiplier 1 (cout == cin == C), a square KxK kernel with K = 3 or 5, equal
 * strides S = 1 or 2, any padding; tensors NHWC of one image, weights repacked as wr[K*K][C]
 * (tap-major, channel innermost).  Compiled with AVX2+FMA (8-float vectors) or AVX-512F
 * (16-float vectors): DW_VEC is defined then, and dwv_takes says which shapes they run.
 * Every pass computes each output element in one fixed order: results do not depend on threads.
 */
#ifndef STYLENET_CONV_DEPTHWISE_VEC_H
#define STYLENET_CONV_DEPTHWISE_VEC_H
#include "kernels/conv.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define DW_VEC 1

/* the shape is one the vector kernels run (m == 1, kh == kw in {3, 5}, sh == sw in {1, 2}) */
int dwv_takes(const conv_desc *d);

/* one output row oy of a stride-S correlation of x[H, W, C] with wr, top/left padding pt/pl (any
 * sign; taps outside x read zeros), output width OW: yrow[OW, C] = act(b + sum) (b may be NULL;
 * act applied in registers before the store, as act_value), or yrow = act(yrow + sum) when accum */
void dwv_forward_row(int K, int S, const float *x, int H, int W, int C, int pt, int pl, int oy, int OW,
                     const float *wr, const float *b, sn_act act, int accum, float *yrow);

/* one row iy of backward-data for stride 2 (the transposed stencil): dxrow[W, C] (+)= sum over the
 * taps (ky, kx) of dy[(iy+pt-ky)/2, (ix+pl-kx)/2] * w[ky, kx] where both are even and in range;
 * dy is [OH, OW, C].  (Stride 1 is dwv_forward_row on dy with the weights flipped.) */
void dwv_backward_data_s2_row(int K, const float *dy, int OH, int OW, int C, int pt, int pl, int iy, int W,
                              const float *wr, int accum, float *dxrow);

/* backward-weights of one output row oy: p[k*C + c] += sum over the row of dy * x at tap k
 * (k < K*K; only when want_dw) and p[K*K*C + c] += sum of dy (the bias) */
void dwv_backward_weights_row(int K, int S, const float *x, int H, int W, int C, int pt, int pl, int oy,
                              int OW, const float *dyrow, int want_dw, float *p);
#endif
#endif
