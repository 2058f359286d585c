/* net_run.c - the fusion plan, the forward pass and the backward pass of a network (see net.h). */
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "kernels/batchnorm.h"
#include "kernels/eltwise.h"
#include "kernels/linear.h"
#include "nn/net_internal.h"

/* ---------------------------------------------------------------- the plan */

/* a transient node's output is recomputable from its kept input: batch norm (saved scale and
 * shift), ReLU/ReLU6, drop-path (its seeded mask; its backward reads only the mask), and a
 * convolution of the network input; everything else, and the output and kept nodes, persist */
static bool is_transient(const net *m, int i) {
    const node *d = &m->nodes[i];
    if (d->keep || i == net_output(m)) return false;
    /* a convolution of the network input (the stem): recomputed in backward from the input, which
     * is kept anyway.  Its output is the largest activation of a resnet (64 channels at half the
     * input resolution: 67 MB of resnet34's batch-64 step at 128 px); recomputing it costs one
     * stem forward (~1% of the step). */
    if (d->op == OP_CONV && d->in0 == 0) return true;
    return d->op == OP_BN || d->op == OP_RELU || d->op == OP_RELU6 || d->op == OP_DROPPATH;
}

static bool is_act(op_kind op) { return op == OP_RELU || op == OP_RELU6; }

/* which nodes need d loss / d output: those with a trainable parameter at or upstream of them */
static void plan_need_dy(net *m) {
    for (int i = 0; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        bool need = param_trainable(m, d->p_w) || param_trainable(m, d->p_b);
        if (d->in0 >= 0 && m->run[d->in0].need_dy) need = true;
        if (d->in1 >= 0 && m->run[d->in1].need_dy) need = true;
        m->run[i].need_dy = need;
    }
}

/* the forward fusions of nodes 1..last, in this order: a transient batch norm with one reader
 * that can apply it (ReLU, ReLU6, add) is fused into it; a convolution whose one reader is a
 * ReLU/ReLU6 applies the activation in its pass, and the ReLU's output (kept like the
 * convolution's would be, unless both are recomputable) is what backward reads, for its mask
 * too (y > 0, 0 < y < 6); a transient ReLU/ReLU6 of a fused batch norm read only by a max pool
 * is fused into the pool (all three in one pass) */
static void plan_forward(net *m, int last) {
    struct node_run *run = m->run;
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i];
        if (d->op != OP_ADD && !is_act(d->op)) continue;
        const node *a = &m->nodes[d->in0];
        if (a->op == OP_BN && run[d->in0].transient && run[d->in0].readers == 1) {
            run[d->in0].fused = true;
        } else if (d->op == OP_ADD) {
            const node *b = &m->nodes[d->in1];
            if (b->op == OP_BN && run[d->in1].transient && run[d->in1].readers == 1) run[d->in1].fused = true;
        }
    }
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
        if (is_act(d->op) && a->op == OP_CONV && run[d->in0].readers == 1 && !node_persists(m, d->in0) &&
            !m->act_unfused) {
            run[d->in0].fused = true;
            run[i].conv_in = true;
            run[i].transient = run[i].transient && run[d->in0].transient;
        }
    }
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
        if (d->op == OP_MAXPOOL && is_act(a->op) && run[d->in0].transient && run[d->in0].readers == 1 &&
            m->nodes[a->in0].op == OP_BN && run[a->in0].fused)
            run[d->in0].fused = true;
    }
}

/* the backward fusions of nodes 1..last (see struct node_run) */
static void plan_backward(net *m, int last) {
    struct node_run *run = m->run;
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
        struct node_run *r = &run[i], *ra = &run[d->in0];
        if (is_act(d->op) && a->op == OP_BN && ra->readers == 1) r->bn_act = true;
        if (is_act(d->op) && r->conv_in && !conv_is_depthwise(&a->conv)) ra->db_by_act = true;
        if (d->op == OP_CONV && conv_is_depthwise(&d->conv) && ra->conv_in && ra->readers == 1 && !ra->transient) {
            r->mask_input = true;
            ra->masked_by_reader = true;
        }
        if (d->op == OP_MAXPOOL && is_act(a->op) && ra->readers == 1 && ra->transient) {
            const node *b = &m->nodes[a->in0];
            const struct node_run *rb = &run[a->in0];
            if (b->op == OP_BN && rb->readers == 1 && rb->transient && run[b->in0].readers == 1 &&
                !node_persists(m, b->in0))
                r->pool_bn_act = true;
        }
    }
}

void net_plan(net *m) {
    const int last = net_output(m);
    for (int i = 0; i < m->n_nodes; i++) {
        struct node_run *r = &m->run[i];
        r->readers = 0;
        r->transient = is_transient(m, i);
        r->fused = r->conv_in = r->bn_act = r->mask_input = r->masked_by_reader = r->db_by_act = false;
        r->pool_bn_act = r->dwpw = r->res_conv = r->add_in = r->pw_gap = false;
    }
    for (int i = 1; i <= last; i++) {
        m->run[m->nodes[i].in0].readers++;
        if (m->nodes[i].op == OP_ADD) m->run[m->nodes[i].in1].readers++;
    }
    plan_need_dy(m);
    plan_forward(m, last);
    if (m->infer_only) net_plan_infer(m, last);
    plan_backward(m, last);
}

/* ---------------------------------------------------------------- computing a node */

static const float *value(net *m, int i);
static int compute_add_into(net *m, int i, sn_act act, float *y);

/* ReLU/ReLU6 node i: with its fused convolution, or from a batch-norm input that has no output
 * (fused into this node, or dropped since) in one pass, or from its input's output */
static int compute_act(net *m, int i, unsigned long wkey) {
    const int n = m->batch;
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    struct node_run *r = &m->run[i];
    const struct node_run *ra = &m->run[d->in0];
    const sn_act act = act_of(d->op);
    if (r->add_in) {
        if (m->run[d->in0].res_conv) return net_infer_add_conv(m, d->in0, i, act);
        if (net_take_y(m, i) < 0) return -1;
        return compute_add_into(m, d->in0, act, r->y);
    } else if (r->conv_in && ra->dwpw) {
        if (net_take_y(m, i) < 0) return -1;
        return net_infer_dwpw(m, d->in0, -1, act, r->y);
    } else if (r->conv_in) {
        const float *x = value(m, a->in0);
        if (!x || net_take_y(m, i) < 0) return -1;
        conv_desc cd = a->conv;
        cd.act = act;
        if (m->infer_only && m->run[d->in0].p_wino >= 0) return net_infer_wino(m, d->in0, &cd, x, r->y, false);
        const int t = m->training ? net_wino_tile(m, &cd) : 0;
        if (t) return net_wino_forward(m, d->in0, &cd, t, x, r->y);
        conv2d_forward_keyed(&cd, n, x, net_param(m, a->p_w), a->p_b >= 0 ? net_param(m, a->p_b) : NULL, r->y, wkey);
    } else if (a->op == OP_BN && !ra->y) {
        const float *x = value(m, a->in0);
        if (!x || net_take_y(m, i) < 0) return -1;
        batchnorm_apply(n * d->h * d->w, d->c, x, ra->scale, ra->shift, NULL, act, r->y);
    } else {
        const float *x = value(m, d->in0);
        if (!x || net_take_y(m, i) < 0) return -1;
        if (act == ACT_RELU) eltwise_relu_forward((size_t)n * node_size(d), x, r->y);
        else eltwise_relu6_forward((size_t)n * node_size(d), x, r->y);
    }
    return 0;
}

/* add node i, then activation act, into y: a fused batch-norm input is applied with the residual
 * in one pass (an add with a fused convolution input is net_infer_add_conv's) */
static int compute_add_into(net *m, int i, sn_act act, float *y) {
    const int n = m->batch;
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0], *b = &m->nodes[d->in1];
    const struct node_run *ra = &m->run[d->in0], *rb = &m->run[d->in1];
    const node *bn = a->op == OP_BN && ra->fused ? a : b->op == OP_BN && rb->fused ? b : NULL;
    if (bn) {
        const struct node_run *rbn = bn == a ? ra : rb;
        const float *x = value(m, bn->in0), *z = value(m, bn == a ? d->in1 : d->in0);
        if (!x || !z) return -1;
        batchnorm_apply(n * d->h * d->w, d->c, x, rbn->scale, rbn->shift, z, act, y);
    } else {
        const float *x = value(m, d->in0), *z = value(m, d->in1);
        if (!x || !z) return -1;
        if (act == ACT_NONE) eltwise_add_forward((size_t)n * node_size(d), x, z, y);
        else eltwise_add_act_forward((size_t)n * node_size(d), x, z, act, y);
    }
    return 0;
}

static int compute_add(net *m, int i) {
    if (m->run[i].res_conv) return net_infer_add_conv(m, i, i, ACT_NONE);
    if (net_take_y(m, i) < 0) return -1;
    return compute_add_into(m, i, ACT_NONE, m->run[i].y);
}

/* max pool node i of a fused ReLU/ReLU6 of a fused batch norm: all three in one pass */
static int compute_pool_bn_act(net *m, int i) {
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0], *b = &m->nodes[a->in0];
    struct node_run *r = &m->run[i];
    const struct node_run *rb = &m->run[a->in0];
    const float *x = value(m, b->in0);
    if (!x || net_take_y(m, i) < 0) return -1;
    maxpool_forward_bn_act(&d->pool, m->batch, x, rb->scale, rb->shift, act_of(a->op), r->y, r->argmax);
    return 0;
}

/* Node i's output [batch, h, w, c] from its inputs' outputs, into its buffer (a pooled one unless
 * it has its own).  An input without an output is recomputed first when it is transient (value);
 * a fused input is applied on the fly.  Forward runs it on every node that is not fused;
 * backward, through value(), on a transient node whose output it needs again.  wkey: the kept
 * convolution weights (net_freeze_weights), 0 for none.  -1 with an error if out of memory or an
 * input is missing. */
static int compute(net *m, int i, bool training, unsigned long wkey) {
    const int n = m->batch;
    const node *d = &m->nodes[i];
    struct node_run *r = &m->run[i];
    if (d->op == OP_INPUT) return 0;
    if (is_act(d->op)) return compute_act(m, i, wkey);
    if (d->op == OP_ADD) return compute_add(m, i);
    if (d->op == OP_MAXPOOL && m->run[d->in0].fused) return compute_pool_bn_act(m, i);
    if (r->dwpw) return net_take_y(m, i) < 0 ? -1 : net_infer_dwpw(m, i, -1, ACT_NONE, r->y);
    if (r->pw_gap) return net_take_y(m, i) < 0 ? -1 : net_infer_pw_gap(m, i, r->y);
    const node *a = &m->nodes[d->in0];
    const size_t cnt = (size_t)n * node_size(d);
    const float *x = value(m, d->in0);
    if (!x || net_take_y(m, i) < 0) return -1;
    switch (d->op) {
    case OP_CONV:
        if (m->infer_only && r->p_wino >= 0) return net_infer_wino(m, i, &d->conv, x, r->y, false);
        if (training) {
            const int t = net_wino_tile(m, &d->conv);
            if (t) return net_wino_forward(m, i, &d->conv, t, x, r->y);
        }
        conv2d_forward_keyed(&d->conv, n, x, net_param(m, d->p_w), d->p_b >= 0 ? net_param(m, d->p_b) : NULL, r->y,
                             wkey);
        break;
    case OP_BN: batchnorm_apply(n * d->h * d->w, d->c, x, r->scale, r->shift, NULL, ACT_NONE, r->y); break;
    case OP_MAXPOOL: maxpool_forward(&d->pool, n, x, r->y, r->argmax); break;
    case OP_AVGPOOL: avgpool_forward(&d->pool, n, x, r->y); break;
    case OP_GAP: global_avgpool_forward(n, a->h * a->w, a->c, x, r->y); break;
    case OP_CONCATPOOL: concatpool_forward(n, a->h * a->w, a->c, x, r->y, r->argmax); break;
    case OP_FLATTEN: memcpy(r->y, x, cnt * sizeof(float)); break;
    case OP_LINEAR:
        linear_forward(n, a->c, d->c, x, net_param(m, d->p_w), d->p_b >= 0 ? net_param(m, d->p_b) : NULL, r->y);
        break;
    case OP_DROPOUT:
        if (training && d->p > 0)
            eltwise_dropout_forward(cnt, d->p, m->seed, m->step * 4096 + (uint64_t)i,
                                    (uint64_t)m->sample0 * node_size(d), x, r->y, r->mask);
        else
            memcpy(r->y, x, cnt * sizeof(float));
        break;
    case OP_DROPPATH:
        if (training && d->p > 0)
            eltwise_droppath_forward(n, node_size(d), d->p, m->seed, m->step * 4096 + (uint64_t)i, (uint64_t)m->sample0,
                                     x, r->y, r->mask);
        else
            memcpy(r->y, x, cnt * sizeof(float));
        break;
    default: break; /* OP_INPUT, OP_RELU, OP_RELU6, OP_ADD: above */
    }
    return 0;
}

/* node i's output: present, or recomputed (a transient node; the plain convolution weights) */
static const float *value(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (r->y) return r->y;
    if (!r->transient) {
        sn_error("node %d: its output is needed but was not computed", i);
        return NULL;
    }
    return compute(m, i, m->training, 0) < 0 ? NULL : r->y;
}

const float *net_value(net *m, int i) { return value(m, i); }

/* ---------------------------------------------------------------- forward */

/* the forward pass is done with input j (a consumer has run): its buffer goes back when no other
 * consumer needs it (in eval mode every pooled one: no backward will read it; in training the
 * transient ones, which backward recomputes).  A fused input's own inputs are read by the fused
 * node's consumer, so they are released here. */
static void release_input(net *m, int j, bool training) {
    while (m->run[j].fused && m->nodes[j].op != OP_ADD) j = m->nodes[j].in0;
    if (m->run[j].fused) { /* an add computed by its reader: both its inputs */
        release_input(m, m->nodes[j].in0, training);
        release_input(m, m->nodes[j].in1, training);
        return;
    }
    struct node_run *rj = &m->run[j];
    if (--rj->refs == 0 && (rj->transient || !training)) net_drop_y(m, j);
}

/* batch norm node i's per-channel scale and shift for this pass: from the batch statistics
 * (training and not frozen; the running statistics move) or from the running ones */
static void bn_prepare(net *m, int i, bool training) {
    node *d = &m->nodes[i];
    struct node_run *r = &m->run[i];
    if (training && !d->bn_frozen) {
        batchnorm_train_stats(m->batch * d->h * d->w, d->c, m->run[d->in0].y, net_param(m, d->p_w),
                              net_param(m, d->p_b), d->eps, d->momentum, net_param(m, d->p_mean),
                              net_param(m, d->p_var), r->save_mean, r->save_invstd, r->scale, r->shift);
        d->tracked++;
    } else {
        batchnorm_eval_scale_shift(d->c, net_param(m, d->p_w), net_param(m, d->p_b), net_param(m, d->p_mean),
                                   net_param(m, d->p_var), d->eps, r->scale, r->shift);
    }
}

const float *net_forward(net *m, const float *x, bool training) {
    if (m->cap_batch == 0) {
        sn_error("net_forward: no activation buffers (net_set_batch first)");
        return NULL;
    }
    memcpy(m->run[0].y, x, (size_t)m->batch * node_size(&m->nodes[0]) * sizeof(float));
    if (!training && net_infer_by_image(m)) return net_infer_forward_images(m);
    return net_forward_from(m, 1, training);
}

/* the training batch norm whose statistics convolution i's forward sums as it goes (see
 * conv_bn_stats), or -1: a kept convolution read only by a batch norm in training mode (not
 * frozen, not synchronised across processes) */
static int stats_reader(const net *m, int i, bool training) {
    const node *d = &m->nodes[i];
    const struct node_run *r = &m->run[i];
    if (!training || batchnorm_sync_on() || d->op != OP_CONV || r->readers != 1 || r->transient || r->fused ||
        r->dwpw)
        return -1;
    for (int j = i + 1; j <= net_output(m); j++) {
        const node *b = &m->nodes[j];
        if (b->in0 == i || (b->op == OP_ADD && b->in1 == i))
            return b->op == OP_BN && b->in0 == i && !b->bn_frozen ? j : -1;
    }
    return -1;
}

/* bytes of output per part: in the last-level cache when its sums are taken (oneDNN's chunk size) */
#define STATS_PART_BYTES ((size_t)4 << 20)

/* convolution i computed in parts of whole images, each part's batch-norm sums (node b) taken
 * right after it, and b's scale and shift set from them (bn_prepare's training branch, without
 * its own pass over the output).  Parts depend only on the shapes: results do not depend on the
 * thread count. */
static int conv_bn_stats(net *m, int i, int b) {
    const node *d = &m->nodes[i];
    node *bn = &m->nodes[b];
    struct node_run *r = &m->run[i], *rb = &m->run[b];
    const float *x = value(m, d->in0);
    if (!x || net_take_y(m, i) < 0) return -1;
    const size_t xs = node_size(&m->nodes[d->in0]), ys = node_size(d);
    const int n = m->batch, c = d->c, hw = d->h * d->w;
    const int per = ys * sizeof(float) < STATS_PART_BYTES ? (int)(STATS_PART_BYTES / (ys * sizeof(float))) : 1;
    const float *bias = d->p_b >= 0 ? net_param(m, d->p_b) : NULL;
    const int t = net_wino_tile(m, &d->conv); /* Winograd: the weights transformed once for all parts */
    float *u = t ? net_wino_weights(m, i, &d->conv, t, false) : NULL;
    if (t && !u) return -1;
    double *s = sn_alloc(sizeof(double) * 4 * (size_t)c, "batch norm sums");
    int ok = s != NULL, rc = 0;
    if (s) memset(s, 0, sizeof(double) * 2 * (size_t)c);
    for (int i0 = 0; i0 < n && rc == 0; i0 += per) {
        const int cn = n - i0 < per ? n - i0 : per;
        if (u) rc = net_wino_apply(m, &d->conv, t, cn, x + i0 * xs, u, bias, NULL, r->y + i0 * ys);
        else conv2d_forward_keyed(&d->conv, cn, x + i0 * xs, net_param(m, d->p_w), bias, r->y + i0 * ys, 0);
        if (ok && batchnorm_sums(cn * hw, c, r->y + i0 * ys, s + 2 * c)) ok = 0;
        for (int j = 0; ok && j < 2 * c; j++) s[j] += s[2 * c + j];
    }
    if (ok) {
        batchnorm_train_stats_from_sums((double)n * hw, c, s, net_param(m, bn->p_w), net_param(m, bn->p_b), bn->eps,
                                        bn->momentum, net_param(m, bn->p_mean), net_param(m, bn->p_var),
                                        rb->save_mean, rb->save_invstd, rb->scale, rb->shift);
        bn->tracked++;
    } else if (rc == 0) { /* out of memory for the sums: a pass of its own */
        bn_prepare(m, b, true);
    }
    sn_free(s);
    if (u) net_pool_put(m, u);
    return rc;
}

const float *net_forward_from(net *m, int first, bool training) {
    if (m->cap_batch == 0) {
        sn_error("net_forward: no activation buffers (net_set_batch first)");
        return NULL;
    }
    if (training && m->infer_only) {
        sn_error("this network is prepared for inference only (batch norm folded into its weights): it cannot "
                 "train; train the network it was prepared from");
        return NULL;
    }
    m->training = training;
    if (training) m->step++;
    const int last = net_output(m);
    const unsigned long wkey = training ? 0 : m->wkey;
    if (first < 1) first = 1;
    for (int i = 0; i <= last; i++) {
        net_drop_y(m, i);
        m->run[i].refs = 0;
    }
    for (int i = first; i <= last; i++) { /* consumers of each node among first..last */
        m->run[m->nodes[i].in0].refs++;
        if (m->nodes[i].op == OP_ADD) m->run[m->nodes[i].in1].refs++;
    }
    for (int i = first; i <= last; i++) {
        const node *d = &m->nodes[i];
        if (d->op == OP_BN && !(d->in0 >= first && stats_reader(m, d->in0, training) == i)) bn_prepare(m, i, training);
        if (m->run[i].fused) continue; /* its consumer computes it */
        const int sb = stats_reader(m, i, training);
        if (sb >= 0 ? conv_bn_stats(m, i, sb) < 0 : compute(m, i, training, wkey) < 0) return NULL;
        release_input(m, d->in0, training);
        if (d->op == OP_ADD) release_input(m, d->in1, training);
    }
    return m->run[last].y;
}

/* ---------------------------------------------------------------- backward helpers */

/* parameter p's gradient, or NULL when p takes none (absent, frozen, a buffer) */
static float *grad_of(net *m, int p) { return param_trainable(m, p) ? net_grad(m, p) : NULL; }

/* node i's activation gradient buffer, zeroed when first taken (backward passes accumulate) */
static float *grad_buf(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (!r->dy) {
        size_t cnt = (size_t)m->batch * node_size(&m->nodes[i]);
        r->dy = net_pool_get(m, cnt);
        if (r->dy) memset(r->dy, 0, cnt * sizeof(float));
    }
    return r->dy;
}

/* hands node i's gradient buffer to node `to` when `to` has none yet (its contents become
 * `to`'s gradient; an in-place transform may follow); false if `to` already has one */
static bool hand_over(net *m, int i, int to) {
    struct node_run *t = &m->run[to];
    if (t->dy) return false;
    t->dy = m->run[i].dy;
    m->run[i].dy = NULL;
    return true;
}

/* node i's gradient into node `to`'s when `to` needs one: handed over, or added to what is there */
static void pass_grad(net *m, int i, int to) {
    struct node_run *t = &m->run[to];
    if (t->need_dy && !hand_over(m, i, to))
        eltwise_axpy((size_t)m->batch * node_size(&m->nodes[i]), 1.0f, m->run[i].dy, t->dy);
}

/* adds node i's gradient into node `to`'s (a copy when `to` has none yet) */
static int give(net *m, int i, int to, size_t cnt) {
    struct node_run *t = &m->run[to];
    if (t->dy) {
        eltwise_axpy(cnt, 1.0f, m->run[i].dy, t->dy);
        return 0;
    }
    t->dy = net_pool_get(m, cnt);
    if (!t->dy) return -1;
    memcpy(t->dy, m->run[i].dy, cnt * sizeof(float));
    return 0;
}

/* batch norm node b's backward in place on buffer g (d loss / d act(bn) on entry) */
static void bn_inplace(net *m, int b, sn_act act, const float *x, float *g) {
    const node *d = &m->nodes[b];
    const struct node_run *r = &m->run[b];
    bool train = m->training && !d->bn_frozen;
    batchnorm_act_backward(train, m->batch * d->h * d->w, d->c, x, r->scale, r->shift, act, net_param(m, d->p_w),
                           train ? r->save_mean : net_param(m, d->p_mean),
                           train ? r->save_invstd : net_param(m, d->p_var), d->eps, g, grad_of(m, d->p_w),
                           grad_of(m, d->p_b));
}

/* ---------------------------------------------------------------- backward per op */

static int backward_conv(net *m, int i) {
    const int n = m->batch;
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    float *dw = grad_of(m, d->p_w);
    float *db = r->db_by_act ? NULL : grad_of(m, d->p_b); /* else its ReLU has summed it */
    if (dw || db) {
        const float *x = value(m, d->in0);
        if (!x) return -1;
        conv2d_backward_weights(&d->conv, n, x, r->dy, dw, db);
        if (ra->transient) net_drop_y(m, d->in0); /* recomputed if needed again */
    }
    if (!ra->need_dy) return 0;
    if (ra->dy) {
        const int w = net_wino_backward_data(m, i, r->dy, ra->dy, true);
        if (!w) conv2d_backward_data(&d->conv, n, r->dy, net_param(m, d->p_w), ra->dy);
        return w < 0 ? -1 : 0;
    }
    /* first gradient to reach the input: written, not added */
    ra->dy = net_pool_get(m, (size_t)n * node_size(a));
    if (!ra->dy) return -1;
    const int w = r->mask_input ? 0 : net_wino_backward_data(m, i, r->dy, ra->dy, false);
    if (w) {
        return w < 0 ? -1 : 0;
    } else if (r->mask_input) {
        /* a depthwise convolution of a fused ReLU's output, its only reader: the ReLU's mask (from
         * that output, its input here) applied to each row as it is written */
        const float *x = value(m, d->in0);
        if (!x) return -1;
        conv2d_backward_data_masked_set(&d->conv, n, r->dy, net_param(m, d->p_w), ra->dy, act_of(a->op), x);
    } else {
        conv2d_backward_data_set(&d->conv, n, r->dy, net_param(m, d->p_w), ra->dy);
    }
    return 0;
}

/* ReLU/ReLU6 and its batch-norm input (one reader) in one in-place pass; the result is the batch
 * norm input's gradient */
static int backward_act_bn(net *m, int i) {
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    struct node_run *r = &m->run[i], *rx = &m->run[a->in0];
    const float *x = value(m, a->in0);
    if (!x) return -1;
    if (m->run[d->in0].need_dy) {
        bn_inplace(m, d->in0, act_of(d->op), x, r->dy);
        pass_grad(m, i, a->in0);
    }
    if (rx->transient) net_drop_y(m, a->in0);
    return 0;
}

static int backward_act(net *m, int i) {
    const int n = m->batch;
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    const size_t cnt = (size_t)n * node_size(d);
    const sn_act act = act_of(d->op);
    if (r->bn_act) return backward_act_bn(m, i);
    if (!ra->need_dy) return 0;
    if (ra->dy) { /* another reader's gradient is there: add to it */
        const float *y = value(m, i);
        if (!y) return -1;
        if (act == ACT_RELU) eltwise_relu_backward(cnt, y, r->dy, ra->dy);
        else eltwise_relu6_backward(cnt, y, r->dy, ra->dy);
        return 0;
    }
    /* in place, handed over: the mask from the activation's input, or from its output when the
     * convolution applied it (the same mask: see conv.h) */
    const float *x = value(m, r->conv_in ? i : d->in0);
    if (!x) return -1;
    sn_act mask = r->masked_by_reader ? ACT_NONE : act;
    if (ra->db_by_act) /* with the dense convolution's bias gradient, in one pass */
        act_backward((long)n * d->h * d->w, d->c, mask, x, r->dy, grad_of(m, a->p_b));
    else if (mask != ACT_NONE)
        act_mask(cnt, act, x, r->dy);
    hand_over(m, i, d->in0);
    if (ra->transient) net_drop_y(m, d->in0);
    return 0;
}

static int backward_bn(net *m, int i) {
    const int n = m->batch;
    const node *d = &m->nodes[i];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    float *dw = grad_of(m, d->p_w), *db = grad_of(m, d->p_b);
    if (!ra->need_dy && !dw && !db) return 0;
    const float *x = value(m, d->in0);
    if (!x) return -1;
    if (!ra->need_dy || !ra->dy) {
        bn_inplace(m, i, ACT_NONE, x, r->dy);
        if (ra->need_dy) hand_over(m, i, d->in0);
    } else if (m->training && !d->bn_frozen) {
        batchnorm_backward_train(n * d->h * d->w, d->c, x, r->dy, net_param(m, d->p_w), r->save_mean, r->save_invstd,
                                 ra->dy, dw, db);
    } else {
        batchnorm_backward_eval(n * d->h * d->w, d->c, x, r->dy, net_param(m, d->p_w), net_param(m, d->p_mean),
                                net_param(m, d->p_var), d->eps, ra->dy, dw, db);
    }
    if (ra->transient) net_drop_y(m, d->in0);
    return 0;
}

/* max pool i of ReLU(batch norm(x)) where x is a pooled output with no other reader: the backward
 * of all three in place over x's buffer, which becomes x's gradient (no buffer the size of x is
 * needed).  false if x's buffer is not a pooled one, or out of memory: the plain path follows. */
static bool maxpool_fused_backward(net *m, int i) {
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0], *b = &m->nodes[a->in0];
    const struct node_run *r = &m->run[i], *rb = &m->run[a->in0];
    struct node_run *rx = &m->run[b->in0];
    if (!rx->y && rx->transient && !value(m, b->in0)) return false; /* a recomputed stem */
    if (!rx->pooled_y) return false;
    const int c = b->c;
    bool train = m->training && !b->bn_frozen;
    double *mu = sn_alloc(sizeof(double) * 2 * c, "batchnorm backward");
    if (!mu) return false;
    for (int j = 0; j < c; j++) {
        mu[j] = train ? rb->save_mean[j] : net_param(m, b->p_mean)[j];
        mu[c + j] = train ? rb->save_invstd[j] : 1.0 / sqrt((double)net_param(m, b->p_var)[j] + b->eps);
    }
    int rc = maxpool_bn_act_backward(&d->pool, m->batch, r->dy, r->argmax, act_of(a->op), rb->scale, rb->shift, mu,
                                     mu + c, train, net_param(m, b->p_w), rx->y, grad_of(m, b->p_w),
                                     grad_of(m, b->p_b));
    sn_free(mu);
    if (rc < 0) return false;
    rx->dy = rx->y; /* the buffer holds d loss / d x from here on */
    rx->y = NULL;
    rx->pooled_y = false;
    return true;
}

/* max pool, average pool, global average pool, concat pool */
static int backward_pool(net *m, int i) {
    const int n = m->batch;
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    const struct node_run *r = &m->run[i];
    if (!m->run[d->in0].need_dy) return 0;
    /* the fused pass sums its batch norm's gradients itself: not with synchronised statistics */
    if (r->pool_bn_act && !batchnorm_sync_on() && maxpool_fused_backward(m, i)) return 0;
    float *dx = grad_buf(m, d->in0);
    if (!dx) return -1;
    if (d->op == OP_MAXPOOL) maxpool_backward(&d->pool, n, r->dy, r->argmax, dx);
    else if (d->op == OP_AVGPOOL) avgpool_backward(&d->pool, n, r->dy, dx);
    else if (d->op == OP_GAP) global_avgpool_backward(n, a->h * a->w, a->c, r->dy, dx);
    else concatpool_backward(n, a->h * a->w, a->c, r->dy, r->argmax, dx);
    return 0;
}

static int backward_linear(net *m, int i) {
    const node *d = &m->nodes[i], *a = &m->nodes[d->in0];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    float *dw = grad_of(m, d->p_w), *db = grad_of(m, d->p_b);
    const float *x = dw ? value(m, d->in0) : ra->y;
    if (dw && !x) return -1;
    float *dx = NULL;
    if (ra->need_dy && !(dx = grad_buf(m, d->in0))) return -1;
    linear_backward(m->batch, a->c, d->c, x, net_param(m, d->p_w), r->dy, dx, dw, db);
    if (ra->transient) net_drop_y(m, d->in0);
    return 0;
}

static int backward_dropout(net *m, int i) {
    const node *d = &m->nodes[i];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    const size_t cnt = (size_t)m->batch * node_size(d);
    if (!ra->need_dy) return 0;
    if (!(m->training && d->p > 0)) {
        pass_grad(m, i, d->in0);
    } else if (!ra->dy) {
        eltwise_dropout_backward_set(cnt, d->p, r->mask, r->dy);
        hand_over(m, i, d->in0);
    } else {
        eltwise_dropout_backward(cnt, d->p, r->mask, r->dy, ra->dy);
    }
    return 0;
}

static int backward_droppath(net *m, int i) {
    const node *d = &m->nodes[i];
    struct node_run *r = &m->run[i], *ra = &m->run[d->in0];
    if (!ra->need_dy) return 0;
    if (!(m->training && d->p > 0)) {
        pass_grad(m, i, d->in0);
    } else if (!ra->dy) {
        eltwise_droppath_backward_set(m->batch, node_size(d), d->p, r->mask, r->dy);
        hand_over(m, i, d->in0);
    } else {
        eltwise_droppath_backward(m->batch, node_size(d), d->p, r->mask, r->dy, ra->dy);
    }
    return 0;
}

/* node i's backward: d loss / d its parameters and d loss / d its inputs from its gradient */
static int backward_node(net *m, int i) {
    const node *d = &m->nodes[i];
    switch (d->op) {
    case OP_CONV: return backward_conv(m, i);
    case OP_RELU:
    case OP_RELU6: return backward_act(m, i);
    case OP_BN: return backward_bn(m, i);
    case OP_ADD:
        if (m->run[d->in1].need_dy && give(m, i, d->in1, (size_t)m->batch * node_size(d)) < 0) return -1;
        pass_grad(m, i, d->in0);
        return 0;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_GAP:
    case OP_CONCATPOOL: return backward_pool(m, i);
    case OP_FLATTEN: pass_grad(m, i, d->in0); return 0;
    case OP_LINEAR: return backward_linear(m, i);
    case OP_DROPOUT: return backward_dropout(m, i);
    case OP_DROPPATH: return backward_droppath(m, i);
    case OP_INPUT: return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- backward */

int net_backward(net *m, const float *dout) {
    if (m->cap_batch == 0) return sn_error("net_backward: no activation buffers (net_set_batch first)");
    if (m->infer_only)
        return sn_error("net_backward: this network is prepared for inference only (batch norm folded into its "
                        "weights): it has no backward pass; train the network it was prepared from");
    const int last = net_output(m);
    for (int i = 0; i <= last; i++) net_drop_dy(m, i);
    if (!m->run[last].need_dy) return 0;
    const size_t cnt = (size_t)m->batch * node_size(&m->nodes[last]);
    m->run[last].dy = net_pool_get(m, cnt);
    if (!m->run[last].dy) goto oom;
    memcpy(m->run[last].dy, dout, cnt * sizeof(float));
    size_t ready = m->n_floats; /* gradients from this offset on are final */
    for (int i = last; i >= 1; i--) {
        const struct node_run *r = &m->run[i];
        if (r->need_dy && r->dy && backward_node(m, i) < 0) goto oom;
        if (m->grad_ready) { /* node i's parameters are done: no node below writes them */
            const node *d = &m->nodes[i];
            const int ps[4] = {d->p_w, d->p_b, d->p_mean, d->p_var};
            for (int k = 0; k < 4; k++)
                if (ps[k] >= 0 && m->params[ps[k]].off < ready) ready = m->params[ps[k]].off;
            m->grad_ready(m->grad_ready_ctx, ready);
        }
        /* nothing at or above i needs its gradient or its output any more: both go back to the
         * pool, where the gradients of the nodes below take them */
        net_drop_dy(m, i);
        net_drop_y(m, i);
    }
    net_drop_dy(m, 0);
    return 0;
oom: /* out of memory for a buffer: the gradients are incomplete */
    for (int i = 0; i <= last; i++) {
        net_drop_dy(m, i);
        net_drop_y(m, i);
    }
    return sn_error_prefix("backward pass (gradients incomplete)");
}
