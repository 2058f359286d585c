/* net_internal.h - what the three parts of the network engine share, private to src/nn/.
 *
 * net.c         the graph and its parameters: building, the parameter arena, init, freezing,
 *               sharing, input size, multiply-adds.
 * net_buffers.c the activation buffers: sizing (net_set_batch), kept outputs, and the pool that
 *               transient outputs and all activation gradients borrow from.
 * net_run.c     the fusion plan, forward and backward.
 * net_infer.c   networks prepared for inference (net_infer.h) and the fusions only they plan.
 *
 * Each node has a struct node_run (m->run[i], as many as m->nodes): the plan that net_plan()
 * decides from the graph (which nodes are transient, which are fused into their consumer, which
 * backward passes are fused, which nodes need a gradient), and the per-run state (buffers,
 * countdown of consumers).  The plan depends on the graph, the output node, kept nodes,
 * freezing (net_freeze_groups) and net_set_act_fusion; whoever changes one of them calls
 * net_plan().
 */
#ifndef STYLENET_NET_INTERNAL_H
#define STYLENET_NET_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels/act.h"
#include "nn/net.h"

struct node_run {
    /* the plan (net_plan) */
    int readers;           /* consumers among nodes 1..output */
    bool transient;        /* output recomputable: held only while a consumer needs it, and recomputed
                              (value()) when backward does */
    bool fused;            /* computed on the fly by its one consumer, never on its own: a batch norm
                              (read by a ReLU/ReLU6 or an add), a convolution (read by a ReLU/ReLU6), a
                              ReLU/ReLU6 of a fused batch norm (read by a max pool) */
    bool conv_in;          /* OP_RELU/RELU6 computing its fused input convolution in the same pass
                              (conv_desc.act); its output is then what backward keeps */
    bool need_dy;          /* a trainable parameter at or upstream of it: backward computes d loss / d y */
    bool bn_act;           /* OP_RELU/RELU6: its backward and its batch-norm input's in one in-place pass */
    bool mask_input;       /* depthwise OP_CONV: writes its input's gradient masked by that input's ReLU */
    bool masked_by_reader; /* OP_RELU/RELU6 whose reader (mask_input) has already applied its mask */
    bool db_by_act;        /* OP_CONV whose bias gradient its fused ReLU/ReLU6 sums while masking */
    bool pool_bn_act;      /* OP_MAXPOOL: its backward, its ReLU's and its batch norm's in place over the
                              batch norm's input buffer, when that is pooled */
    /* inference fusions (net_plan_infer; a prepared network only: no backward) */
    bool dwpw;             /* 1x1 OP_CONV computing its depthwise input (and that one's activation) in its
                              pass, and the 1x1 expansion (and activation) the depthwise one reads when
                              read by nothing else */
    bool res_conv;         /* OP_ADD computing its fused convolution input in its pass, onto the other
                              input: a dwpw one, or a dense one (conv2d_forward_keyed_add) */
    bool add_in;           /* OP_RELU/RELU6 computing its add input in the same pass */
    bool pw_gap;           /* OP_GAP computing its 1x1 OP_CONV input (and that one's ReLU/ReLU6) in its
                              pass (net_infer_pw_gap) */
    int p_pack;            /* depthwise OP_CONV: its weights repacked for the row kernels (a buffer
                              parameter net_prepare_inference adds), or -1 */
    int p_wino;            /* dense 3x3 stride-1 OP_CONV: its weights transformed for Winograd (a buffer
                              parameter net_prepare_inference adds: kernels/conv_winograd.h), or -1 */
    /* per run, sized by net_set_batch */
    float *y, *dy;         /* y: NULL between uses for a transient node; dy: from the pool */
    bool pooled_y;         /* y currently borrowed from the pool */
    int refs;              /* forward: consumers still to run */
    float *save_mean, *save_invstd, *scale, *shift; /* OP_BN */
    int32_t *argmax;       /* OP_MAXPOOL, OP_CONCATPOOL */
    uint8_t *mask;         /* OP_DROPOUT (per element), OP_DROPPATH (per sample) */
};

static inline size_t node_size(const node *d) { return (size_t)d->h * d->w * d->c; }

/* persistent outputs have a buffer of their own: the input, the output and kept nodes */
static inline bool node_persists(const net *m, int i) { return i == 0 || i == net_output(m) || m->nodes[i].keep; }

static inline bool param_trainable(const net *m, int p) {
    return p >= 0 && !m->params[p].frozen && !m->params[p].buffer;
}

static inline sn_act act_of(op_kind op) { return op == OP_RELU ? ACT_RELU : op == OP_RELU6 ? ACT_RELU6 : ACT_NONE; }

/* net_run.c: decides the plan (see struct node_run) for the whole graph */
void net_plan(net *m);
/* net_run.c: node i's output, present or recomputed (a transient node); NULL with an error */
const float *net_value(net *m, int i);

/* net_infer.c: the inference fusions of nodes 1..last of a prepared network, after the others */
void net_plan_infer(net *m, int last);
/* net_infer.c: whether a forward of m runs its batch image by image on worker threads (a prepared
 * network, more than one image and thread, no kept node but the output), and that forward, from
 * the input already in node 0's buffer */
bool net_infer_by_image(const net *m);
const float *net_infer_forward_images(net *m);
/* net_infer.c: the 1x1 convolution pw (run[pw].dwpw) with its depthwise input, onto residual node
 * res (-1: none), activation act, into y; -1 with an error */
int net_infer_dwpw(net *m, int pw, int res, sn_act act, float *y);
/* net_infer.c: convolution c (run[c].p_wino >= 0) with descriptor cd (its own, with the activation to
 * apply) on input x into y, adding onto y's contents when add (a residual); -1 with an error */
int net_infer_wino(net *m, int c, const conv_desc *cd, const float *x, float *y, bool add);
/* net_infer.c: add node a (run[a].res_conv), then activation act, into node out's output (a, or
 * the ReLU/ReLU6 computing it): its fused convolution onto the other input; -1 with an error */
int net_infer_add_conv(net *m, int a, int out, sn_act act);
/* net_infer.c: global average pool g (run[g].pw_gap) with its 1x1 convolution input, into y; -1
 * with an error */
int net_infer_pw_gap(net *m, int g, float *y);

/* net_wino.c: a training network's dense 3x3 stride-1 convolutions on Winograd.  net_wino_tile: the
 * output tile descriptor cd runs on, 0 for another backend (a prepared network, CONV_ALGO_DIRECT, a
 * shape or map size Winograd does not take).  net_wino_weights: convolution node c's weights
 * transformed for cd and tile t (flip: for its backward data pass, cd being that pass's
 * descriptor: conv2d_winograd_backward_data_desc) into a pooled buffer (net_pool_put it), NULL with
 * an error.  net_wino_apply: y = act(conv(x) + b + res) of n images from those weights (-1 with an
 * error).  net_wino_forward: y = act(conv(x) + b) of the batch for node c, descriptor cd (its own,
 * with the activation to apply), tile t.  net_wino_backward_data: dx = (add: dx +) node c's input
 * gradient from dy: 1 done, 0 not a shape Winograd runs (nothing written), -1 with an error. */
int net_wino_tile(const net *m, const conv_desc *cd);
float *net_wino_weights(net *m, int c, const conv_desc *cd, int t, bool flip);
int net_wino_apply(net *m, const conv_desc *cd, int t, int n, const float *x, const float *u, const float *b,
                   const float *res, float *y);
int net_wino_forward(net *m, int c, const conv_desc *cd, int t, const float *x, float *y);
int net_wino_backward_data(net *m, int c, const float *dy, float *dx, bool add);

/* net.c: appends buffer parameter "<node nd's name>.<suffix>" (no gradient, not initialised) with
 * shape dims[0..ndim); its index, or -1 with an error */
int net_add_buffer(net *m, int nd, const char *suffix, int ndim, const int *dims);

/* net_buffers.c */
/* a piece of the pool of at least n floats, 64-byte aligned; NULL with an error if out of memory */
float *net_pool_get(net *m, size_t n);
/* gives a piece back (merged with its free neighbours) */
void net_pool_put(net *m, float *p);
/* gives node i a pooled output buffer unless it has one; -1 if out of memory */
int net_take_y(net *m, int i);
/* gives node i's pooled output back (a buffer of its own stays) */
void net_drop_y(net *m, int i);
/* gives node i's gradient buffer back */
void net_drop_dy(net *m, int i);
/* frees every node's run buffers and the pool */
void net_buffers_free(net *m);
#endif
