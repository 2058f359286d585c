/* eltwise.h - element-wise layers: ReLU, ReLU6, residual add, dropout, drop-path, and helpers.
 * Forward overwrites y; backward ACCUMULATES into dx (see conv.h), and the *_set variant
 * overwrites.  n is the element count.  ReLU/ReLU6 backward read the forward OUTPUT y (the
 * gradient passes where act_passes(y): 0 < y (< 6)), so the input need not be kept.  Dropout
 * keeps each element with probability 1-p and scales it by 1/(1-p); the mask comes from rng.h,
 * so it depends only on (seed, stream, index).  Drop-path (stochastic depth) is dropout per
 * sample: sample s of a batch of n rows of `per` floats is kept with probability 1-p, decided by
 * rng_uniform(seed, stream, s) >= p (mask[s]), and then scaled by 1/(1-p).
 */
#ifndef STYLENET_ELTWISE_H
#define STYLENET_ELTWISE_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/act.h"

void eltwise_relu_forward(size_t n, const float *x, float *y);
void eltwise_relu_backward(size_t n, const float *y, const float *dy, float *dx);
void eltwise_relu6_forward(size_t n, const float *x, float *y);
void eltwise_relu6_backward(size_t n, const float *y, const float *dy, float *dx);
void eltwise_add_forward(size_t n, const float *a, const float *b, float *y); /* y = a + b */
/* y = act(a + b) in one pass: a residual add and the ReLU after it (bitwise the two passes) */
void eltwise_add_act_forward(size_t n, const float *a, const float *b, sn_act act, float *y);
void eltwise_axpy(size_t n, float alpha, const float *x, float *y);           /* y += alpha * x */
/* element i's keep draw is rng_uniform(seed, stream, first + i): `first` places x in a larger
 * batch (a rank's share of a data-parallel batch draws what the whole batch would) */
void eltwise_dropout_forward(size_t n, float p, uint64_t seed, uint64_t stream, uint64_t first, const float *x,
                             float *y, uint8_t *mask);
void eltwise_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx);
/* in place: g = d loss / d y on entry, d loss / d x on return (overwritten) */
void eltwise_dropout_backward_set(size_t n, float p, const uint8_t *mask, float *g);
/* x, y: n samples of `per` floats; mask[n] (may be NULL) records which samples were kept; sample
 * s's draw is rng_uniform(seed, stream, first + s) */
void eltwise_droppath_forward(int n, size_t per, float p, uint64_t seed, uint64_t stream, uint64_t first,
                              const float *x, float *y, uint8_t *mask);
/* dx += d loss / d x from dy and the forward's mask */
void eltwise_droppath_backward(int n, size_t per, float p, const uint8_t *mask, const float *dy, float *dx);
/* in place: g = d loss / d y on entry, d loss / d x on return (overwritten) */
void eltwise_droppath_backward_set(int n, size_t per, float p, const uint8_t *mask, float *g);
#endif
