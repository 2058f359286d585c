/* conv.h - 2-D convolution, forward and both backward passes, on NHWC tensors: the public API.
 *
 * Layout (why NHWC, "channels last"): with channels innermost, a 1x1 convolution is exactly one
 * GEMM over [N*H*W, Cin] x [Cin, Cout] with no data movement, a KxK one is a GEMM over an
 * im2col matrix whose rows are contiguous runs of Cin floats (cheap to build, one image at a
 * time so it stays in cache), and depthwise/pooling/batch-norm/element-wise loops vectorise over
 * C with unit stride.  It is also TFLite's layout.
 *   activations  x[N, H, W, C]
 *   weights      w[Cout, KH, KW, Cin/groups]   ("OHWI"; PyTorch's OIHW is permuted at load)
 *   bias         b[Cout]
 * Padding is explicit per side, so TensorFlow 'SAME' (asymmetric on stride 2) and PyTorch's
 * symmetric padding are both exact.  groups = 1 is dense, groups = Cin with Cout = m*Cin is
 * depthwise (channel multiplier m), anything dividing both is grouped.
 *
 * Contract: forward overwrites y; backward passes ACCUMULATE (dx += ..., dw += ..., db += ...),
 * as PyTorch's .grad does, so a tensor feeding two consumers gets the sum; the *_set variants
 * overwrite instead.  Any of dx, dw, db may be NULL to skip that gradient.  All functions are
 * thread-parallel (OpenMP) internally and deterministic: the same inputs give bitwise the same
 * outputs for a given thread count.  They have no error return: a pass always completes.
 *
 * Each pass is dispatched (conv.c) to the first backend that takes it (conv_backend.h):
 * conv_depthwise.c's direct kernels for depthwise shapes, oneDNN's convolution primitives for dense
 * ones (outside an OpenMP parallel region), im2col + sgemm for the rest, and the reference
 * loops when a backend is out of memory.
 */
#ifndef STYLENET_CONV_H
#define STYLENET_CONV_H
#include <stdbool.h>
#include "kernels/act.h"

typedef struct {
    int h, w, cin;      /* input size */
    int cout, kh, kw;   /* output channels, kernel size */
    int sh, sw;         /* stride */
    int pt, pb, pl, pr; /* zero padding: top, bottom, left, right */
    int groups;         /* 1 dense; cin (with cout % cin == 0) depthwise */
    int algo;           /* CONV_ALGO_AUTO (0, the default), CONV_ALGO_DIRECT or CONV_ALGO_WINOGRAD */
    sn_act act;         /* forward only: ACT_NONE (the default), ACT_RELU or ACT_RELU6 applied to y = conv + bias */
    int oh, ow;         /* output size: filled by conv_desc_init */
} conv_desc;

/* The activation fused into the forward pass (conv2d_forward*): y = act(conv(x) + b), in the
 * same pass (oneDNN's eltwise post-op, or applied to each block of the output while it is in
 * cache), bitwise what a separate eltwise_relu_forward / eltwise_relu6_forward would give.
 * Backward passes ignore it: the caller masks dy itself (act.h: act_backward, which also sums the
 * bias gradient), which it can do from y alone (act_passes reads the output as well as the input). */

/* CONV_ALGO_AUTO lets 3x3 stride-1 dense layers use Winograd F(4x4,3x3) where oneDNN has it and
 * the call is large enough for it to be faster (about 2x on resnet training batches; rounding a
 * little different from a direct sum); CONV_ALGO_DIRECT never does; CONV_ALGO_WINOGRAD does
 * wherever oneDNN can, whatever the speed (for tests). */
enum { CONV_ALGO_AUTO = 0, CONV_ALGO_DIRECT = 1, CONV_ALGO_WINOGRAD = 2 };

/* groups == cin > 1: the depthwise kernels run it */
static inline bool conv_is_depthwise(const conv_desc *d) { return d->groups == d->cin && d->groups > 1; }
/* a 1x1 kernel, stride 1, no padding (any groups): each output pixel reads its own input pixel */
static inline bool conv_is_pointwise(const conv_desc *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && !d->pt && !d->pb && !d->pl && !d->pr;
}
/* validates the fields above and computes oh, ow; -1 with an error if they make no sense */
int conv_desc_init(conv_desc *d);
/* TensorFlow 'SAME' padding for one axis: out = ceil(in/stride), extra pixel on the high side */
void conv_same_padding(int in, int k, int stride, int *pad_lo, int *pad_hi);
/* multiply-adds of one forward pass for n images (GFLOPS = 2 * macs / seconds / 1e9) */
double conv2d_macs(const conv_desc *d, int n);
/* whether the forward pass of this shape and batch runs on oneDNN's Winograd (d->algo decides
 * whether it may: see CONV_ALGO_*) */
bool conv2d_forward_is_winograd(const conv_desc *d, int n);

/* x[n,h,w,cin], w[cout,kh,kw,cin/g], b[cout] or NULL -> y[n,oh,ow,cout] */
void conv2d_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
/* as conv2d_forward, for weights that do not change: wkey != 0 promises that w holds the same
 * values in every call with this wkey (e.g. a model loaded for inference), so the weights in the
 * kernel's layout are kept between calls instead of reordered each time (one copy per shape and
 * batch size; about 7 ms of a resnet34 batch-1 pass).  wkey == 0 is conv2d_forward. */
void conv2d_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                          unsigned long wkey);
/* y = act(conv(x) + b + y): the forward pass (keyed as conv2d_forward_keyed) adding onto what y
 * holds, before d->act -- a residual add and its ReLU in the convolution's pass (oneDNN's sum
 * post-op; the other backends compute into a scratch copy and add it).  Same rounding as
 * conv2d_forward followed by eltwise_add_act_forward where oneDNN runs it.  0, or -1 with an
 * error when out of memory (y then partly updated). */
int conv2d_forward_keyed_add(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                             unsigned long wkey);
/* dy[n,oh,ow,cout], w -> dx[n,h,w,cin] += */
void conv2d_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
/* as conv2d_backward_data, but dx = ... (overwritten; its contents on entry do not matter) */
void conv2d_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
/* as conv2d_backward_data_set, then dx = 0 where act does not pass at x (the convolution's input,
 * that activation's output): the activation's backward, applied (depthwise) to each row of dx as
 * it is written, bitwise act_mask of the unmasked result */
void conv2d_backward_data_masked_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx,
                                     sn_act act, const float *x);
/* x, dy -> dw[cout,kh,kw,cin/g] += , db[cout] += (either may be NULL) */
void conv2d_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);
#endif
