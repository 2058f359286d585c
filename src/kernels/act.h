/* act.h - the element-wise activations that kernels apply fused into other passes.
 *
 * Contract: ACT_NONE / ACT_RELU / ACT_RELU6 name an activation wherever a kernel takes one
 * (convolution, batch norm, pooling).  A leaf module: it includes no other kernel.
 *   act_value(act, v)   the activation of one value: ReLU max(v, 0), ReLU6 min(max(v, 0), 6)
 *   act_passes(act, v)  whether the activation's gradient passes at v: ReLU v > 0, ReLU6
 *                       0 < v < 6, none always.  v may be the activation's input or its output:
 *                       the two give the same answer, so a backward pass can read the output.
 * Every pass below is bitwise what applying these two element by element gives.  act_apply and
 * act_mask are serial below ACT_PAR_MIN elements or inside an OpenMP parallel region (call them
 * per block from a parallel kernel), threaded above it.  act_backward and act_bias_grad thread
 * over rows (serial inside a parallel region) and sum each column in double partials over a
 * static row split, added in thread order: deterministic for a thread count.
 */
#ifndef STYLENET_ACT_H
#define STYLENET_ACT_H
#include <stdbool.h>

typedef enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 } sn_act;

/* element counts from which act_apply / act_mask start threads */
#define ACT_PAR_MIN 65536

static inline float act_value(sn_act act, float v) {
    if (act == ACT_NONE) return v;
    v = v > 0.0f ? v : 0.0f;
    return act == ACT_RELU6 ? (v < 6.0f ? v : 6.0f) : v;
}

static inline bool act_passes(sn_act act, float v) {
    return act == ACT_NONE || (v > 0.0f && (act == ACT_RELU || v < 6.0f)); /* no switch: loops vectorise */
}

/* y[0..n) = act(y), in place */
void act_apply(sn_act act, long n, float *y);
/* g[0..n) = 0 where act does not pass at y[0..n) (the activation's output or input), in place */
void act_mask(long n, sn_act act, const float *y, float *g);
/* the activation's backward in place on g[rows, c] (act_mask), and with db (may be NULL)
 * db[c] += the column sums of the masked g, in the same pass */
void act_backward(long rows, int c, sn_act act, const float *y, float *g, float *db);
/* db[c] += the column sums of g[rows, c], summed bitwise as act_backward sums them (a
 * convolution's bias gradient) */
void act_bias_grad(long rows, int c, const float *g, float *db);
#endif
