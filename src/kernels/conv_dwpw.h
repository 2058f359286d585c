/* conv_dwpw.h - a depthwise convolution and the 1x1 convolution that reads it, in one pass: the
 * depthwise + projection pair of MobileNetV2's and EfficientNet-Lite's blocks, for inference.
 *
 * Contract: x[n, h, w, C] (the depthwise input), y[n, oh, ow, CO]:
 *   t = dw->act(depthwise(x, wd) + bd)          (dw: conv_is_depthwise)
 *   y = pw->act(t * wp^T + bp [+ res])          (pw: 1x1, stride 1, no padding, groups 1, reading t)
 * with res[n, oh, ow, CO] the block's residual (may be NULL), bd and bp may be NULL.  t never goes
 * to memory: each block of rows of one image is computed into a per-thread buffer that stays in
 * cache (L2), and multiplied by the projection weights (gemm_sgemm, one thread per block) into y,
 * which holds the bias and the residual by then.  This removes the write and the read of t (the
 * widest activation of the block) and the separate passes of the residual add and activation.
 * Parallel over (image, row block), each output computed by one thread in a fixed order:
 * deterministic for a thread count.  Rounding differs from the two convolutions run apart only in
 * the order the projection's bias and residual are added (before the sum instead of after).
 * conv2d_dwpw_forward_ref is the plain composition of the reference convolutions, for tests.
 */
#ifndef STYLENET_CONV_DWPW_H
#define STYLENET_CONV_DWPW_H
#include <stdbool.h>
#include "kernels/conv.h"

/* whether the pair chains as above (shapes of both filled by conv_desc_init) */
bool conv2d_dwpw_takes(const conv_desc *dw, const conv_desc *pw);
/* -1 with an error (nothing written) if the pair does not chain or out of memory, else 0 */
int conv2d_dwpw_forward(const conv_desc *dw, const conv_desc *pw, int n, const float *x, const float *wd,
                        const float *bd, const float *wp, const float *bp, const float *res, float *y);
/* the same result from the reference convolutions (double sums); -1 if out of memory */
int conv2d_dwpw_forward_ref(const conv_desc *dw, const conv_desc *pw, int n, const float *x, const float *wd,
                            const float *bd, const float *wp, const float *bp, const float *res, float *y);
#endif
