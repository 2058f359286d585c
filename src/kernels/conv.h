/* conv.h - 2-D convolution, forward and both backward passes, on NHWC tensors.
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
 * as PyTorch's .grad does, so a tensor feeding two consumers gets the sum.  Any of dx, dw, db may
 * be NULL to skip that gradient.  All functions are thread-parallel (OpenMP) internally and
 * deterministic: the same inputs give bitwise the same outputs for a given thread count.
 * The *_ref functions are direct seven-loop versions for tests; they take the same arguments.
 */
#ifndef STYLENET_CONV_H
#define STYLENET_CONV_H

typedef struct {
    int h, w, cin;      /* input size */
    int cout, kh, kw;   /* output channels, kernel size */
    int sh, sw;         /* stride */
    int pt, pb, pl, pr; /* zero padding: top, bottom, left, right */
    int groups;         /* 1 dense; cin (with cout % cin == 0) depthwise */
    int algo;           /* CONV_ALGO_AUTO (0, the default), CONV_ALGO_DIRECT or CONV_ALGO_WINOGRAD */
    int act;            /* forward only: CONV_ACT_NONE (0), _RELU or _RELU6 applied to y = conv + bias */
    int oh, ow;         /* output size: filled by conv_desc_init */
} conv_desc;

/* An activation fused into the forward pass (conv2d_forward*): y = act(conv(x) + b), in the same
 * pass (oneDNN's eltwise post-op, or applied to each block of the output while it is in cache),
 * bitwise what a separate relu_forward / relu6_forward would give.  Backward passes ignore it:
 * the caller masks dy itself, which it can do from y alone (ReLU: y > 0; ReLU6: 0 < y < 6 pass
 * exactly where the activation's input does). */
enum { CONV_ACT_NONE = 0, CONV_ACT_RELU = 1, CONV_ACT_RELU6 = 2 };
/* y[0..n) = act(y): the fused activation's element-wise form (serial: call it per block) */
void conv_act_apply(int act, long n, float *y);
/* the fused activation's backward, in place: g[rows, c] = 0 where act does not pass at its output
 * y; with db (may be NULL), db += the column sums of the masked g in one pass, summed exactly as
 * conv2d_backward_weights sums a dense convolution's bias gradient (so passing db = NULL to it
 * afterwards gives bitwise the same result as masking first) */
void conv_act_backward(long rows, int c, int act, const float *y, float *g, float *db);
/* the mask alone: g[0..n) = 0 where act does not pass at y (serial: call it per block) */
void conv_act_mask(long n, int act, const float *y, float *g);

/* CONV_ALGO_AUTO lets 3x3 stride-1 dense layers use Winograd F(4x4,3x3) where oneDNN has it and
 * the call is large enough for it to be faster (about 2x on resnet training batches; rounding a
 * little different from a direct sum); CONV_ALGO_DIRECT never does; CONV_ALGO_WINOGRAD does
 * wherever oneDNN can, whatever the speed (for tests). */
enum { CONV_ALGO_AUTO = 0, CONV_ALGO_DIRECT = 1, CONV_ALGO_WINOGRAD = 2 };

/* groups == cin > 1: the depthwise kernels (depthwise.c) run it */
int conv_is_depthwise(const conv_desc *d);
/* validates the fields above and computes oh, ow; -1 with an error if they make no sense */
int conv_desc_init(conv_desc *d);
/* TensorFlow 'SAME' padding for one axis: out = ceil(in/stride), extra pixel on the high side */
void conv_same_padding(int in, int k, int stride, int *pad_lo, int *pad_hi);

/* The three passes below run on oneDNN's convolution primitives where oneDNN has a fast kernel
 * for the shape (dense, groups 1, called outside an OpenMP parallel region), else on im2col +
 * sgemm (the *_gemm functions), else (depthwise) on depthwise.c's direct kernels. */
/* x[n,h,w,cin], w[cout,kh,kw,cin/g], b[cout] or NULL -> y[n,oh,ow,cout] */
void conv2d_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
/* dy[n,oh,ow,cout], w -> dx[n,h,w,cin] += */
void conv2d_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
/* x, dy -> dw[cout,kh,kw,cin/g] += , db[cout] += (either may be NULL) */
void conv2d_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);
/* as conv2d_forward, for weights that do not change: wkey != 0 promises that w holds the same
 * values in every call with this wkey (e.g. a model loaded for inference), so the weights in the
 * kernel's layout are kept between calls instead of reordered each time (one copy per shape and
 * batch size; about 7 ms of a resnet34 batch-1 pass).  wkey == 0 is conv2d_forward. */
void conv2d_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                          unsigned long wkey);
/* as conv2d_backward_data, but dx = ... (overwritten; its contents on entry do not matter) */
void conv2d_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx);

/* the im2col + sgemm path alone (same contract; depthwise still goes to depthwise.c), for tests
 * and benchmarks */
void conv2d_forward_gemm(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
void conv2d_backward_data_gemm(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
void conv2d_backward_weights_gemm(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);

/* the oneDNN path alone (conv_onednn.c): 0 when done, 1 when oneDNN declines the call (groups != 1,
 * inside a parallel region, only a reference kernel, out of memory) and nothing was written.
 * backward_data adds into dx when accumulate, else overwrites it; backward_weights adds into dw
 * (the bias gradient is not computed here).  Activations stay NHWC for the caller; Winograd's
 * blocked layout is internal. */
int conv2d_onednn_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
int conv2d_onednn_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                                unsigned long wkey);
int conv2d_onednn_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx, int accumulate);
int conv2d_onednn_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw);
/* which oneDNN algorithm the forward pass of this shape uses: 0 none (declined), 1 direct, 2 Winograd */
int conv2d_onednn_algorithm(const conv_desc *d, int n);

void conv2d_forward_ref(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
void conv2d_backward_data_ref(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
void conv2d_backward_weights_ref(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);

/* Depthwise convolution (groups == cin > 1, cout = m*cin, channel multiplier m): direct NHWC
 * kernels vectorised over channels.  conv2d_forward/backward_* call these when groups == cin;
 * they are exposed for tests and benchmarks and follow the same contract. */
void conv2d_depthwise_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
/* backward data that adds into dx (accumulate 1: conv2d_depthwise_backward_data) or overwrites it
 * (0); with act != CONV_ACT_NONE, x (the input, an activation's output) masks the result as that
 * activation's backward would (only with accumulate 0: the mask applies to the whole of dx) */
void conv2d_depthwise_backward_data_ex(const conv_desc *d, int n, const float *dy, const float *w, float *dx,
                                       int accumulate, int act, const float *x);
void conv2d_depthwise_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
void conv2d_depthwise_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw,
                                       float *db);

/* multiply-adds of one forward pass for n images (GFLOPS = 2 * macs / seconds / 1e9) */
double conv2d_macs(const conv_desc *d, int n);
#endif
