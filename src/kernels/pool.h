/* pool.h - max, average, global and concat pooling on NHWC tensors.
 *
 * Windowed pools take a pool_desc (explicit per-side padding like conv.h).  Max pool ignores
 * padding (as PyTorch pads with -inf); average pool divides by the full window when
 * count_include_pad (PyTorch's default) and by the in-image part otherwise (TensorFlow).
 * Global pools reduce H*W to 1: y[n, c].  Concat pool is fastai's AdaptiveConcatPool2d with
 * output size 1: y[n, 2c] = [max over HW | mean over HW] (max first, as fastai).
 * Max pools record the flat input index (h*W + w) of each output's maximum in argmax; the first
 * maximum wins on ties.  Backward passes ACCUMULATE into dx.  *_ref versions are for tests.
 */
#ifndef STYLENET_POOL_H
#define STYLENET_POOL_H
#include <stdint.h>
#include "kernels/act.h"

typedef struct {
    int h, w, c;
    int kh, kw, sh, sw;
    int pt, pb, pl, pr;
    int count_include_pad; /* average pool only */
    int oh, ow;            /* filled by pool_desc_init */
} pool_desc;

int pool_desc_init(pool_desc *d);

/* x[n,h,w,c] -> y[n,oh,ow,c], argmax[n,oh,ow,c] */
void maxpool_forward(const pool_desc *d, int n, const float *x, float *y, int32_t *argmax);
void maxpool_backward(const pool_desc *d, int n, const float *dy, const int32_t *argmax, float *dx);
/* fused for nn/net.c: max pool of act(x*scale + shift) (a batch norm and an activation on the
 * fly, bitwise as materialising them first), and its backward through the activation
 * and the batch norm IN PLACE: x (the batch norm's input) is overwritten with d loss / d x.
 * mu, is: the batch norm's mean and 1/sqrt(var+eps) (batch ones when train, else running);
 * dgamma, dbeta accumulate (may be NULL).  -1 if out of memory (x untouched). */
void maxpool_forward_bn_act(const pool_desc *d, int n, const float *x, const float *scale, const float *shift, sn_act act,
                            float *y, int32_t *argmax);
int maxpool_bn_act_backward(const pool_desc *d, int n, const float *dy, const int32_t *argmax, sn_act act,
                            const float *scale, const float *shift, const double *mu, const double *is, int train,
                            const float *gamma, float *x, float *dgamma, float *dbeta);
void avgpool_forward(const pool_desc *d, int n, const float *x, float *y);
void avgpool_backward(const pool_desc *d, int n, const float *dy, float *dx);
void maxpool_forward_ref(const pool_desc *d, int n, const float *x, float *y, int32_t *argmax);
void avgpool_forward_ref(const pool_desc *d, int n, const float *x, float *y);

/* x[n,hw,c] -> y[n,c] */
void global_avgpool_forward(int n, int hw, int c, const float *x, float *y);
void global_avgpool_backward(int n, int hw, int c, const float *dy, float *dx);
/* x[n,hw,c] -> y[n,2c] = [max | avg], argmax[n,c] */
void concatpool_forward(int n, int hw, int c, const float *x, float *y, int32_t *argmax);
void concatpool_backward(int n, int hw, int c, const float *dy, const int32_t *argmax, float *dx);
#endif
