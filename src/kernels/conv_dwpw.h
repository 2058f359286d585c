/* conv_dwpw.h - an inverted-residual block in one pass, for inference: the 1x1 expansion (optional),
 * the depthwise convolution and the 1x1 projection of MobileNetV2's and EfficientNet-Lite's blocks.
 *
 * Contract: x[n, h, w, Cin] (the block input), y[n, oh, ow, CO]:
 *   e = ex->act(x * we^T + be)                  (ex: 1x1, stride 1, no padding, groups 1; with no
 *                                                expansion, e = x)
 *   t = dw->act(depthwise(e, wd) + bd)          (dw: conv_is_depthwise)
 *   y = pw->act(t * wp^T + bp [+ res])          (pw: 1x1, stride 1, no padding, groups 1, reading t)
 * with res[n, oh, ow, CO] the block's residual (may be NULL); be, bd and bp may be NULL.  Neither e
 * nor t goes to memory: each image's output rows are computed block by block, in order, into
 * per-thread buffers that stay in cache (L2): the rows of e the block's depthwise rows read (the
 * rows it shares with the previous block are kept, not computed again), then t, then y.  The two
 * 1x1 parts run on the calling thread (one thread per block): with their weights packed
 * (conv2d_dwpw_pack_1x1, done once by the caller) and widths that are multiples of 8, a
 * register-tiled AVX2/FMA kernel (4 x 24 or 6 x 16 outputs, bias, residual and activation applied
 * in registers before the one store); else gemm_sgemm and a pass for the rest.  The depthwise
 * part is conv_depthwise.c's row kernels.  This removes the write and the read of e and t (the
 * widest activations of the block) and the separate passes of the residual add and activation.
 * Parallel over (image, share of its rows): with fewer images than threads each image's rows are
 * split between threads (the rows of e at a split are computed by both sides); or, where such an
 * image's rows do not divide evenly between the threads and its e and t fit in their caches
 * (the 7x7 blocks at batch 1), each image runs whole
 * by all threads: each computes a share of e's pixels into one buffer, then (after a barrier) a
 * share of the output pixels, their depthwise outputs and projection, so no row of e is computed
 * twice and the shares are equal to a tile of rows.  Each output is computed by one thread in an order fixed by n
 * and the thread count: deterministic for a thread count; with both 1x1 parts on the tile kernel
 * each output's sums are the same however the work is cut, so the output is bitwise the same
 * for every thread count.  Rounding is that of the three convolutions run apart (bias added after each sum, then
 * the residual, then the activation) up to the order of each sum's terms.
 *
 * conv2d_dwpw_forward writes nothing but y and scratch: the depthwise weights come repacked
 * (conv2d_depthwise_repack, done once by the caller) and the work buffers from the caller
 * (conv2d_dwpw_scratch floats, 64-byte aligned), so a call allocates nothing.
 * conv2d_dwpw_forward_ref is the plain composition of the reference convolutions (OHWI depthwise
 * weights), for tests.
 */
#ifndef STYLENET_CONV_DWPW_H
#define STYLENET_CONV_DWPW_H
#include <stdbool.h>
#include <stddef.h>
#include "kernels/conv.h"

/* a block: descriptors filled by conv_desc_init, weights OHWI except wd (see above) */
typedef struct {
    const conv_desc *ex;   /* the 1x1 expansion computing the depthwise input, or NULL (x is that input) */
    const conv_desc *dw, *pw;
    const float *we, *be;  /* ex's weights [Ce, Cin] and bias (NULL: none); unused without ex */
    const float *wd, *bd;  /* dw's weights: repacked [kh*kw][Ce] (forward) or OHWI (forward_ref); bias */
    const float *wp, *bp;  /* pw's weights [CO, Ce] and bias */
    const float *wep, *wpp; /* forward: ex's and pw's weights packed (conv2d_dwpw_pack_1x1), or NULL */
} conv_dwpw;

/* the weights w[N, K] of a 1x1 convolution packed for conv2d_dwpw_forward's tile kernel into
 * wp[N * K]: panels of 24 output channels (the last N % 24, or two of 16 where that would be 8),
 * each [K][its width] */
void conv2d_dwpw_pack_1x1(int N, int K, const float *w, float *wp);

/* whether dw and pw chain as above */
bool conv2d_dwpw_takes(const conv_desc *dw, const conv_desc *pw);
/* whether ex computes dw's input as above */
bool conv2d_dwpw_takes_expansion(const conv_desc *ex, const conv_desc *dw);
/* floats of work buffers conv2d_dwpw_forward needs for n images, called where it will be called
 * (it runs on omp_get_max_threads() threads, one inside a parallel region); 0 if they do not chain */
size_t conv2d_dwpw_scratch(const conv_dwpw *b, int n);
/* y as above, in scratch; -1 with an error (nothing written) if the descriptors do not chain */
int conv2d_dwpw_forward(const conv_dwpw *b, int n, const float *x, const float *res, float *y, float *scratch);
/* the same result from the reference convolutions (double sums); -1 if out of memory */
int conv2d_dwpw_forward_ref(const conv_dwpw *b, int n, const float *x, const float *res, float *y);

/* The head of MobileNetV2 and EfficientNet-Lite, the last 1x1 convolution and the global average
 * pool, in one pass: y[n, N] = the mean over the M pixels of act(x[n, M, K] * w^T + b) (b may be
 * NULL), from the weights packed by conv2d_dwpw_pack_1x1, on the tile kernel; the [M, N] output
 * never goes to memory (48 rows of one panel of at most 24 channels at a time, in L1).  Each mean is
 * summed in double in pixel order and divided by M, as global_avgpool_forward does.  Parallel over
 * (image, panel of channels) (the calling thread alone inside a parallel region): each output
 * by one thread, its sums in an order independent of the thread count.  conv2d_pw_gap_takes:
 * whether this build runs it for N output channels (a multiple of 8, AVX2 and FMA); else
 * conv2d_pw_gap_forward returns -1 with an error and writes nothing. */
bool conv2d_pw_gap_takes(int N);
int conv2d_pw_gap_forward(int n, int M, int N, int K, const float *x, const float *wp, const float *b, sn_act act,
                          float *y);
#endif
