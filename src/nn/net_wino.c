/* net_wino.c - a training network's dense 3x3 stride-1 convolutions on Winograd (see net_internal.h).
 *
 * A training forward of a network that is not prepared for inference runs its dense 3x3 stride-1
 * convolutions on Winograd (kernels/conv_winograd.h) where conv2d_winograd_train_tile gives the
 * shape a tile and its descriptor does not ask for CONV_ALGO_DIRECT: the forward, and the backward
 * data pass as the convolution of dy with the rotated, transposed weights.  The weights change
 * every step and a pass runs each convolution once (a recomputed one twice), so each call
 * transforms them into a pooled buffer, given back with the work buffers. */
#include "kernels/conv_winograd.h"
#include "nn/net_internal.h"

int net_wino_tile(const net *m, const conv_desc *cd) {
    if (m->infer_only || cd->algo == CONV_ALGO_DIRECT || !conv2d_winograd_takes(cd)) return 0;
    return conv2d_winograd_train_tile(cd);
}

float *net_wino_weights(net *m, int c, const conv_desc *cd, int t, bool flip) {
    float *u = net_pool_get(m, conv2d_winograd_weights_size(cd, t));
    if (!u) return NULL;
    const float *w = net_param(m, m->nodes[c].p_w);
    if (flip) conv2d_winograd_pack_backward_data(cd, t, w, u);
    else conv2d_winograd_pack(cd, t, w, u);
    return u;
}

int net_wino_apply(net *m, const conv_desc *cd, int t, int n, const float *x, const float *u, const float *b,
                   const float *res, float *y) {
    float *scratch = net_pool_get(m, conv2d_winograd_scratch(cd, t, n));
    if (!scratch) return -1;
    const int rc = conv2d_winograd_forward(cd, t, n, x, u, b, res, y, scratch);
    net_pool_put(m, scratch);
    return rc;
}

/* y = act(conv(x) + b + res) of the batch on descriptor cd, tile t, convolution node c's weights
 * (flip: transformed for its backward data pass, cd being that pass's descriptor) */
static int run(net *m, int c, const conv_desc *cd, int t, bool flip, const float *x, const float *b,
               const float *res, float *y) {
    float *u = net_wino_weights(m, c, cd, t, flip);
    if (!u) return -1;
    const int rc = net_wino_apply(m, cd, t, m->batch, x, u, b, res, y);
    net_pool_put(m, u);
    return rc;
}

int net_wino_forward(net *m, int c, const conv_desc *cd, int t, const float *x, float *y) {
    const int p_b = m->nodes[c].p_b;
    return run(m, c, cd, t, false, x, p_b >= 0 ? net_param(m, p_b) : NULL, NULL, y);
}

int net_wino_backward_data(net *m, int c, const float *dy, float *dx, bool add) {
    conv_desc bd;
    if (!net_wino_tile(m, &m->nodes[c].conv) || !conv2d_winograd_backward_data_desc(&m->nodes[c].conv, &bd)) return 0;
    const int t = net_wino_tile(m, &bd);
    if (!t) return 0;
    return run(m, c, &bd, t, true, dy, NULL, add ? dx : NULL, dx) < 0 ? -1 : 1;
}
