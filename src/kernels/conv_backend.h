/* conv_backend.h - the convolution backends below conv.c's dispatcher.  Internal: included by
 * src/kernels/ and by the tests and benchmarks that run one backend alone; everything else
 * calls conv.h.
 *
 * Contract (same tensors, layouts, and overwrite / accumulate rules as conv.h): a backend pass
 * returns how many of the n images it computed, counted from the first.  n: it took the call.
 * 0: it declined the call (a shape it does not run, an OpenMP parallel region for oneDNN, out of
 * memory) and wrote nothing.  Between the two (oneDNN alone, which runs a batch in chunks): a
 * later chunk failed, and images [done, n) were left untouched.  A backend never calls another
 * backend or the dispatcher: only conv.c falls back, to the next backend in the order
 *   depthwise (conv_depthwise.c) -> oneDNN (conv_onednn.c) -> im2col + sgemm (conv_gemm.c)
 *   -> reference (conv_ref.c, which never declines).
 * oneDNN's backward-weights pass takes no bias gradient: for dense shapes the dispatcher sums it
 * itself (act_bias_grad); the depthwise kernels sum theirs with the weights.
 */
#ifndef STYLENET_CONV_BACKEND_H
#define STYLENET_CONV_BACKEND_H
#include "kernels/conv.h"

/* Depthwise (groups == cin > 1, cout = m*cin, channel multiplier m): direct NHWC kernels
 * vectorised over channels; declines every other shape. */
int conv2d_depthwise_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
/* the pieces of the depthwise forward pass, for kernels that fuse it (conv_dwpw.c): the weights
 * repacked for the row kernels (sn_free them; NULL if out of memory), and one output row oy of
 * one image xi[h, w, cin]: yrow[ow, cout] = act(b + sum), exactly as conv2d_depthwise_forward
 * computes that row (which runs on them) */
float *conv2d_depthwise_repack(const conv_desc *d, const float *w);
void conv2d_depthwise_forward_row(const conv_desc *d, const float *xi, const float *wr, const float *b, int oy,
                                  float *yrow);
int conv2d_depthwise_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
/* dx = ..., each row cleared just before it is summed; with act != ACT_NONE, each finished row
 * is then zeroed where act does not pass at x (conv.h: conv2d_backward_data_masked_set) */
int conv2d_depthwise_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx,
                                       sn_act act, const float *x);
int conv2d_depthwise_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw,
                                      float *db);

/* oneDNN's convolution primitives: dense (groups 1) only, outside OpenMP parallel regions, and
 * only where oneDNN has a fast kernel for the shape.  Activations stay NHWC for the caller;
 * Winograd's blocked layout is internal.  backward_weights adds into dw (non-NULL). */
int conv2d_onednn_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
int conv2d_onednn_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                                unsigned long wkey);
int conv2d_onednn_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
int conv2d_onednn_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
int conv2d_onednn_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw);
/* y = act(conv(x) + b + y) (d->act after the sum): the forward pass adding onto y's contents */
int conv2d_onednn_forward_add(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                              unsigned long wkey);
/* which oneDNN algorithm the forward pass of this shape uses: 0 none (declined), 1 direct, 2 Winograd */
int conv2d_onednn_algorithm(const conv_desc *d, int n);

/* im2col + sgemm: dense and grouped shapes; declines depthwise ones (and out of memory).
 * backward_weights: db (may be NULL) += the bias gradient, summed as act_bias_grad. */
int conv2d_gemm_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
int conv2d_gemm_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
int conv2d_gemm_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);

/* The reference: direct seven-loop convolutions accumulating in double, any shape, no work
 * buffers; the last fallback and the tests' oracle. */
void conv2d_ref_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y);
void conv2d_ref_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx);
void conv2d_ref_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db);
#endif
