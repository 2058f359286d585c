/* net_infer.c - a network prepared for inference (see net_infer.h): the copy with batch norm
 * folded in, and the inference fusions of its plan with the passes that run them. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/conv_dwpw.h"
#include "kernels/conv_winograd.h"
#include "kernels/eltwise.h"
#include "nn/net_infer.h"
#include "nn/net_internal.h"

/* ---------------------------------------------------------------- preparing */

/* the readers of each node of s among nodes 1..output (cnt), and the last of them (who) */
static int count_readers(const net *s, int *cnt, int *who) {
    for (int i = 0; i < s->n_nodes; i++) cnt[i] = 0, who[i] = -1;
    for (int i = 1; i <= net_output(s); i++) {
        const node *d = &s->nodes[i];
        cnt[d->in0]++, who[d->in0] = i;
        if (d->op == OP_ADD) cnt[d->in1]++, who[d->in1] = i;
    }
    return 0;
}

static bool plain_node(const net *s, int i) { return i != net_output(s) && !s->nodes[i].keep; }

/* batch norm b's per-channel scale gamma / sqrt(var + eps) and shift beta - mean * scale */
static void bn_affine(net *s, int b, int c, double *scale, double *shift) {
    const node *d = &s->nodes[b];
    const float *g = net_param(s, d->p_w), *be = net_param(s, d->p_b), *mu = net_param(s, d->p_mean),
                *var = net_param(s, d->p_var);
    for (int k = 0; k < c; k++) {
        scale[k] = (double)g[k] / sqrt((double)var[k] + d->eps);
        shift[k] = (double)be[k] - (double)mu[k] * scale[k];
    }
}

static bool is_pointwise(const conv_desc *d) {
    return d->groups == 1 && conv_is_pointwise(d);
}

/* convolution i of m gets buffer "<name>.packed": its weights in the layout of the fused block
 * kernels (a depthwise one repacked for the row kernels, a 1x1 one in panels: kernels/conv_dwpw.h) */
static int add_packed(net *m, int i) {
    const conv_desc *cd = &m->nodes[i].conv;
    const bool dw = conv_is_depthwise(cd);
    const int dims[2] = {dw ? cd->kh * cd->kw : cd->cout, dw ? cd->cout : cd->cin};
    const int p = net_add_buffer(m, i, "packed", 2, dims);
    if (p < 0) return -1;
    const float *w = net_param(m, m->nodes[i].p_w);
    if (!dw) {
        conv2d_dwpw_pack_1x1(cd->cout, cd->cin, w, net_param(m, p));
        return 0;
    }
    float *wr = conv2d_depthwise_repack(cd, w);
    if (!wr) return -1;
    memcpy(net_param(m, p), wr, sizeof(float) * (size_t)dims[0] * (size_t)dims[1]);
    sn_free(wr);
    return 0;
}

/* the convolution node a of m is, or that its ReLU/ReLU6 a reads; -1 if neither */
static int conv_behind(const net *m, int a) {
    if (m->nodes[a].op == OP_RELU || m->nodes[a].op == OP_RELU6) a = m->nodes[a].in0;
    return m->nodes[a].op == OP_CONV ? a : -1;
}

/* the packed weights of each 1x1 convolution that a global average pool reads (through its
 * ReLU/ReLU6 or not) and the tile kernel takes, unless it reads a depthwise one (packed as its
 * projection): net_infer_pw_gap's */
static int add_head_packs(net *m) {
    for (int i = 1; i < m->n_nodes; i++) {
        if (m->nodes[i].op != OP_GAP) continue;
        const int c = conv_behind(m, m->nodes[i].in0);
        if (c < 0 || !is_pointwise(&m->nodes[c].conv) || !conv2d_pw_gap_takes(m->nodes[c].conv.cout)) continue;
        const int a = conv_behind(m, m->nodes[c].in0);
        if ((a < 0 || !conv_is_depthwise(&m->nodes[a].conv)) && add_packed(m, c) < 0) return -1;
    }
    return 0;
}

/* the packed weights of every convolution a fused block may read: each depthwise convolution,
 * the 1x1 one it reads (its expansion) and each 1x1 one reading it (its projection) */
static int add_block_packs(net *m) {
    const int n = m->n_nodes;
    for (int i = 1; i < n; i++) {
        const node *d = &m->nodes[i];
        if (d->op != OP_CONV) continue;
        const int a = conv_behind(m, d->in0);
        const bool dw = conv_is_depthwise(&d->conv);
        const bool ex = dw && a >= 0 && is_pointwise(&m->nodes[a].conv);
        const bool pw = !dw && is_pointwise(&d->conv) && a >= 0 && conv_is_depthwise(&m->nodes[a].conv);
        if ((dw && add_packed(m, i) < 0) || (ex && add_packed(m, a) < 0) || (pw && add_packed(m, i) < 0)) return -1;
    }
    return add_head_packs(m);
}

/* each dense 3x3 stride-1 convolution that Winograd runs faster (conv2d_winograd_tile) gets buffer
 * "<name>.wino": its weights transformed for the tile that shape runs on (kernels/conv_winograd.h) */
static int add_wino_packs(net *m) {
    const int n = m->n_nodes;
    for (int i = 1; i < n; i++) {
        const conv_desc *cd = &m->nodes[i].conv;
        const int t = m->nodes[i].op == OP_CONV && conv2d_winograd_takes(cd) ? conv2d_winograd_tile(cd) : 0;
        if (!t) continue;
        const int a2 = (t + 2) * (t + 2);
        const int dims[2] = {a2, (int)(conv2d_winograd_weights_size(cd, t) / (size_t)a2)};
        const int p = net_add_buffer(m, i, "wino", 2, dims);
        if (p < 0) return -1;
        conv2d_winograd_pack(cd, t, net_param(m, m->nodes[i].p_w), net_param(m, p));
    }
    return 0;
}

/* a copy of convolution c of s reading x, with batch norm b (or -1) folded in */
static int copy_conv(net *m, net *s, int x, int c, int b, double *scale, double *shift) {
    const node *d = &s->nodes[c];
    conv_desc cd = d->conv;
    cd.act = ACT_NONE;
    const bool bias = b >= 0 || d->p_b >= 0;
    int i = net_conv_desc(m, x, d->name, cd, bias);
    if (i < 0) return -1;
    m->nodes[i].same_pad = d->same_pad;
    const int O = cd.cout;
    const size_t per = s->params[d->p_w].numel / (size_t)O;
    const float *w = net_param(s, d->p_w), *b0 = d->p_b >= 0 ? net_param(s, d->p_b) : NULL;
    float *nw = net_param(m, m->nodes[i].p_w), *nb = bias ? net_param(m, m->nodes[i].p_b) : NULL;
    if (b >= 0) bn_affine(s, b, O, scale, shift);
    for (int o = 0; o < O; o++) {
        const double sc = b >= 0 ? scale[o] : 1.0;
        for (size_t k = 0; k < per; k++) nw[o * per + k] = (float)(w[o * per + k] * sc);
        if (nb) nb[o] = (float)((b0 ? (double)b0[o] : 0.0) * sc + (b >= 0 ? shift[o] : 0.0));
    }
    return i;
}

/* a copy of linear layer l of s reading x, with batch norm b (or -1) on its input folded in */
static int copy_linear(net *m, net *s, int x, int l, int b, double *scale, double *shift) {
    const node *d = &s->nodes[l];
    const int in = s->nodes[d->in0].c, out = d->c;
    const bool bias = b >= 0 || d->p_b >= 0;
    int i = net_linear(m, x, d->name, out, bias);
    if (i < 0) return -1;
    const float *w = net_param(s, d->p_w), *b0 = d->p_b >= 0 ? net_param(s, d->p_b) : NULL;
    float *nw = net_param(m, m->nodes[i].p_w), *nb = bias ? net_param(m, m->nodes[i].p_b) : NULL;
    if (b >= 0) bn_affine(s, b, in, scale, shift);
    for (int o = 0; o < out; o++) {
        double acc = b0 ? b0[o] : 0.0;
        for (int k = 0; k < in; k++) {
            const double wk = w[(size_t)o * in + k];
            nw[(size_t)o * in + k] = (float)(b >= 0 ? wk * scale[k] : wk);
            if (b >= 0) acc += wk * shift[k];
        }
        if (nb) nb[o] = (float)acc;
    }
    return i;
}

/* a batch norm of s kept as one (nothing to fold it into) */
static int copy_bn(net *m, net *s, int x, int b) {
    const node *d = &s->nodes[b];
    int i = net_bn(m, x, d->name, d->eps, d->momentum);
    if (i < 0) return -1;
    const int ps[4] = {d->p_w, d->p_b, d->p_mean, d->p_var}, pn[4] = {m->nodes[i].p_w, m->nodes[i].p_b,
                                                                     m->nodes[i].p_mean, m->nodes[i].p_var};
    for (int k = 0; k < 4; k++) memcpy(net_param(m, pn[k]), net_param(s, ps[k]), sizeof(float) * (size_t)d->c);
    return i;
}

/* the folds: fold[c] = b for a convolution c whose batch norm b is folded into it; into[l] = b for
 * a linear layer l that takes batch norm b of its input, and then fold[b] = l (b passes its input
 * through) */
static void plan_folds(const net *s, const int *cnt, const int *who, int *fold, int *into) {
    for (int i = 0; i < s->n_nodes; i++) fold[i] = into[i] = -1;
    for (int b = 1; b <= net_output(s); b++) {
        const node *d = &s->nodes[b];
        if (d->op != OP_BN) continue;
        if (s->nodes[d->in0].op == OP_CONV && cnt[d->in0] == 1 && plain_node(s, d->in0)) {
            fold[d->in0] = b;
            continue;
        }
        int r = b;
        while (cnt[r] == 1 && plain_node(s, r) && (r == b || s->nodes[r].op == OP_DROPOUT)) r = who[r];
        if (r != b && s->nodes[r].op == OP_LINEAR) into[r] = b, fold[b] = r;
    }
}

/* node i of s copied into m reading map[] (-2: leave it to the batch norm's conv or linear) */
static int copy_node(net *m, net *s, int i, const int *map, const int *fold, const int *into, double *sc,
                     double *sh) {
    const node *d = &s->nodes[i];
    const int x = map[d->in0];
    switch (d->op) {
    case OP_CONV: return copy_conv(m, s, x, i, fold[i], sc, sh);
    case OP_BN: return -2;
    case OP_LINEAR: return copy_linear(m, s, x, i, into[i], sc, sh);
    case OP_RELU: return net_relu(m, x);
    case OP_RELU6: return net_relu6(m, x);
    case OP_ADD: return net_add(m, x, map[d->in1]);
    case OP_MAXPOOL:
        if (d->pool.kh != d->pool.kw || d->pool.sh != d->pool.sw || d->pool.pt != d->pool.pb ||
            d->pool.pt != d->pool.pl || d->pool.pt != d->pool.pr)
            return sn_error("max pool %d: an asymmetric window or padding is not copied", i);
        return net_maxpool(m, x, d->pool.kh, d->pool.sh, d->pool.pt);
    case OP_AVGPOOL: return net_avgpool(m, x, d->pool);
    case OP_GAP: return net_gap(m, x);
    case OP_CONCATPOOL: return net_concatpool(m, x);
    case OP_FLATTEN: return net_flatten(m, x);
    case OP_DROPOUT:
    case OP_DROPPATH: return x; /* identities in eval mode */
    case OP_INPUT: break;
    }
    return sn_error("node %d: an input in the middle of the network", i);
}

net *net_prepare_inference(const net *src) {
    net *s = (net *)src; /* read only: net_param takes a non-const net */
    const node *in = &s->nodes[0];
    net *m = net_create(in->h, in->w, in->c);
    int maxc = 1; /* the widest batch norm: the room of its scale and shift */
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].op == OP_BN && s->nodes[i].c > maxc) maxc = s->nodes[i].c;
    int *ints = malloc(sizeof(int) * 5 * (size_t)s->n_nodes);
    double *aff = malloc(sizeof(double) * 2 * (size_t)maxc);
    if (!m || !ints || !aff) {
        sn_error("out of memory preparing a network for inference");
        goto fail;
    }
    int *map = ints, *cnt = ints + s->n_nodes, *who = cnt + s->n_nodes, *fold = who + s->n_nodes,
        *into = fold + s->n_nodes;
    count_readers(s, cnt, who);
    plan_folds(s, cnt, who, fold, into);
    const int last = net_output(s);
    map[0] = 0;
    for (int i = 1; i <= last; i++) {
        const node *d = &s->nodes[i];
        net_set_group(m, d->group);
        int r = copy_node(m, s, i, map, fold, into, aff, aff + maxc);
        if (r == -2) { /* a batch norm: folded into its convolution or its linear reader, or kept */
            const bool folded = (s->nodes[d->in0].op == OP_CONV && fold[d->in0] == i) || fold[i] >= 0;
            r = folded ? map[d->in0] : copy_bn(m, s, map[d->in0], i);
        }
        if (r < 0) goto fail;
        map[i] = r;
    }
    m->out = map[last];
    if (add_block_packs(m) < 0 || add_wino_packs(m) < 0) goto fail;
    snprintf(m->arch, sizeof m->arch, "%s", s->arch);
    m->seed = s->seed;
    for (int p = 0; p < m->n_params; p++) m->params[p].frozen = true;
    m->infer_only = true;
    net_freeze_weights(m);
    net_plan(m);
    free(ints);
    free(aff);
    return m;
fail:
    sn_error_prefix("preparing %s for inference", s->arch[0] ? s->arch : "a network");
    net_free(m);
    free(ints);
    free(aff);
    return NULL;
}

/* ---------------------------------------------------------------- the fusions */

static bool is_act(op_kind op) { return op == OP_RELU || op == OP_RELU6; }

/* a node computed only by its one reader: read by one node, neither kept nor the output */
static bool private_to_reader(const net *m, int i) { return m->run[i].readers == 1 && !node_persists(m, i); }

/* the convolution computing node a: a itself, or the convolution of a ReLU/ReLU6 computed with it
 * (conv_in); -1 if none */
static int conv_of(const net *m, int a) {
    if (is_act(m->nodes[a].op)) return m->run[a].conv_in ? m->nodes[a].in0 : -1;
    return m->nodes[a].op == OP_CONV ? a : -1;
}

/* the depthwise convolution that 1x1 convolution p reads (directly, or through a ReLU/ReLU6
 * computed with it), each read only by the next; -1 if none */
static int dw_input(const net *m, int p) {
    const node *d = &m->nodes[p];
    if (d->op != OP_CONV || !private_to_reader(m, d->in0)) return -1;
    const int a = conv_of(m, d->in0);
    if (a < 0 || !private_to_reader(m, a) || !conv2d_dwpw_takes(&m->nodes[a].conv, &d->conv)) return -1;
    return a;
}

/* the 1x1 expansion that depthwise convolution dw reads (directly, or through a ReLU/ReLU6
 * computed with it), each read only by the next; -1 if none */
static int ex_input(const net *m, int dw) {
    const int in = m->nodes[dw].in0;
    if (!private_to_reader(m, in)) return -1;
    const int a = conv_of(m, in);
    if (a < 0 || !private_to_reader(m, a) || !conv2d_dwpw_takes_expansion(&m->nodes[a].conv, &m->nodes[dw].conv))
        return -1;
    return a;
}

/* the 1x1 convolution that global average pool g reads (directly, or through a ReLU/ReLU6
 * computed with it), each read only by the next, when conv2d_pw_gap_forward takes it with its
 * packed weights; -1 if none */
static int gap_input(const net *m, int g) {
    const int in = m->nodes[g].in0;
    if (!private_to_reader(m, in)) return -1;
    const int c = conv_of(m, in);
    if (c < 0 || (c != in && !private_to_reader(m, c)) || m->run[c].dwpw || m->run[c].p_pack < 0) return -1;
    const conv_desc *d = &m->nodes[c].conv;
    return is_pointwise(d) && conv2d_pw_gap_takes(d->cout) ? c : -1;
}

/* run[i].p_pack of every depthwise convolution: its "<name>.packed" buffer (add_packed); run[i].p_wino
 * of every dense 3x3 stride-1 one: its "<name>.wino" buffer (add_wino_packs) */
static void plan_packed(net *m) {
    for (int i = 0; i < m->n_nodes; i++) m->run[i].p_pack = m->run[i].p_wino = -1;
    for (int p = 0; p < m->n_params; p++) {
        const param *q = &m->params[p];
        const size_t len = strlen(q->name);
        if (len > 7 && !strcmp(q->name + len - 7, ".packed")) m->run[q->node].p_pack = p;
        if (len > 5 && !strcmp(q->name + len - 5, ".wino")) m->run[q->node].p_wino = p;
    }
}

/* a dense convolution that an add can compute in its pass: read by the add alone, not fused yet */
static bool dense_conv_for_add(const net *m, int c) {
    const node *d = &m->nodes[c];
    return d->op == OP_CONV && d->conv.groups == 1 && !m->run[c].fused && !m->run[c].dwpw && private_to_reader(m, c);
}

/* each residual add of a dense convolution (ResNet's blocks): the convolution adds onto the other
 * input in its own pass (run[add].res_conv; net_infer_add_conv), the main branch (in0) first */
static void plan_add_conv(net *m, int last) {
    for (int a = 1; a <= last; a++) {
        const node *d = &m->nodes[a];
        if (d->op != OP_ADD || m->run[a].res_conv || d->in0 == d->in1) continue;
        for (int k = 0; k < 2; k++) {
            const int c = k ? d->in1 : d->in0, o = k ? d->in0 : d->in1;
            if (!dense_conv_for_add(m, c) || m->run[o].fused) continue;
            m->run[c].fused = m->run[a].res_conv = true;
            break;
        }
    }
}

void net_plan_infer(net *m, int last) {
    struct node_run *run = m->run;
    plan_packed(m);
    for (int i = 1; i <= last; i++) {
        const int dw = dw_input(m, i);
        if (dw < 0 || run[dw].p_pack < 0) continue;
        run[i].dwpw = true;
        run[m->nodes[i].in0].fused = run[dw].fused = true;
        const int ex = ex_input(m, dw);
        if (ex >= 0) run[m->nodes[dw].in0].fused = run[ex].fused = true;
    }
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i];
        if (d->op != OP_ADD) continue;
        const int p = run[d->in1].dwpw && !run[d->in1].fused ? d->in1 : d->in0;
        if (run[p].dwpw && !run[p].fused && private_to_reader(m, p)) {
            run[p].fused = true;
            run[i].res_conv = true;
        }
    }
    for (int i = 1; i <= last; i++) {
        const node *d = &m->nodes[i];
        const node *a = &m->nodes[d->in0];
        if (!is_act(d->op) || a->op != OP_ADD || !private_to_reader(m, d->in0)) continue;
        /* a batch norm fused into the add takes a residual with ReLU only (batchnorm_apply) */
        const bool bn_in = (m->nodes[a->in0].op == OP_BN && run[a->in0].fused) ||
                           (m->nodes[a->in1].op == OP_BN && run[a->in1].fused);
        if (bn_in && d->op == OP_RELU6) continue;
        run[d->in0].fused = true;
        run[i].add_in = true;
    }
    plan_add_conv(m, last);
    for (int g = 1; g <= last; g++) {
        const int c = m->nodes[g].op == OP_GAP && !run[g].fused ? gap_input(m, g) : -1;
        if (c < 0) continue;
        run[g].pw_gap = true;
        run[m->nodes[g].in0].fused = run[c].fused = true;
    }
}

/* the descriptor of convolution c with the activation of node a (c itself or its ReLU/ReLU6) */
static conv_desc desc_act(const net *m, int c, int a) {
    conv_desc d = m->nodes[c].conv;
    d.act = a != c ? act_of(m->nodes[a].op) : ACT_NONE;
    return d;
}

static const float *bias_of(net *m, int c) { return m->nodes[c].p_b >= 0 ? net_param(m, m->nodes[c].p_b) : NULL; }

/* convolution c's packed weights (add_packed), or NULL (also for c = -1) */
static const float *packed_of(net *m, int c) { return c >= 0 && m->run[c].p_pack >= 0 ? net_param(m, m->run[c].p_pack) : NULL; }

int net_infer_dwpw(net *m, int pw, int res, sn_act act, float *y) {
    const node *p = &m->nodes[pw];
    const int dwi = dw_input(m, pw);
    if (dwi < 0 || m->run[dwi].p_pack < 0) return sn_error("node %d: no depthwise input to compute with it", pw);
    const int exi = ex_input(m, dwi), in = exi >= 0 ? m->nodes[exi].in0 : m->nodes[dwi].in0;
    conv_desc ed = exi >= 0 ? desc_act(m, exi, m->nodes[dwi].in0) : (conv_desc){0};
    conv_desc dd = desc_act(m, dwi, p->in0), pd = p->conv;
    pd.act = act;
    const conv_dwpw b = {.ex = exi >= 0 ? &ed : NULL, .dw = &dd, .pw = &pd,
                         .we = exi >= 0 ? net_param(m, m->nodes[exi].p_w) : NULL, .be = exi >= 0 ? bias_of(m, exi) : NULL,
                         .wd = net_param(m, m->run[dwi].p_pack), .bd = bias_of(m, dwi),
                         .wp = net_param(m, p->p_w), .bp = bias_of(m, pw), .wep = packed_of(m, exi),
                         .wpp = packed_of(m, pw)};
    const float *x = net_value(m, in), *r = res >= 0 ? net_value(m, res) : NULL;
    if (!x || (res >= 0 && !r)) return -1;
    /* the work buffers come from the pool: after the first pass, no allocation */
    float *scratch = net_pool_get(m, conv2d_dwpw_scratch(&b, m->batch));
    if (!scratch) return -1;
    const int rc = conv2d_dwpw_forward(&b, m->batch, x, r, y, scratch);
    net_pool_put(m, scratch);
    return rc;
}

int net_infer_add_conv(net *m, int a, int out, sn_act act) {
    const node *d = &m->nodes[a];
    const int c = m->run[d->in1].fused && m->nodes[d->in1].op == OP_CONV ? d->in1 : d->in0;
    const int res = c == d->in1 ? d->in0 : d->in1;
    struct node_run *ro = &m->run[out], *rr = &m->run[res];
    if (m->run[c].dwpw) return net_take_y(m, out) < 0 ? -1 : net_infer_dwpw(m, c, res, act, ro->y);
    const node *cv = &m->nodes[c];
    const float *x = net_value(m, cv->in0), *r = net_value(m, res);
    if (!x || !r) return -1;
    if (!ro->y && rr->pooled_y && rr->refs == 1 && res != cv->in0) {
        /* the add is the residual's last reader: its buffer becomes the output, updated in place */
        ro->y = rr->y, ro->pooled_y = true;
        rr->y = NULL, rr->pooled_y = false;
    } else {
        if (net_take_y(m, out) < 0) return -1;
        memcpy(ro->y, r, sizeof(float) * (size_t)m->batch * node_size(d));
    }
    conv_desc cd = cv->conv;
    cd.act = act;
    if (m->run[c].p_wino >= 0) return net_infer_wino(m, c, &cd, x, ro->y, true);
    return conv2d_forward_keyed_add(&cd, m->batch, x, net_param(m, cv->p_w), bias_of(m, c), ro->y, m->wkey);
}

int net_infer_pw_gap(net *m, int g, float *y) {
    const int in = m->nodes[g].in0, c = gap_input(m, g);
    if (c < 0) return sn_error("node %d: no 1x1 convolution input to compute with it", g);
    const node *cv = &m->nodes[c];
    const float *x = net_value(m, cv->in0);
    if (!x) return -1;
    const sn_act act = c != in ? act_of(m->nodes[in].op) : ACT_NONE;
    return conv2d_pw_gap_forward(m->batch, cv->conv.h * cv->conv.w, cv->conv.cout, cv->conv.cin, x,
                                 net_param(m, m->run[c].p_pack), bias_of(m, c), act, y);
}

int net_infer_wino(net *m, int c, const conv_desc *cd, const float *x, float *y, bool add) {
    return net_wino_apply(m, cd, conv2d_winograd_tile(cd), m->batch, x, net_param(m, m->run[c].p_wino), bias_of(m, c),
                          add ? y : NULL, y);
}

/* ---------------------------------------------------------------- a batch image by image */

/* A batch of a prepared network runs as independent passes of one image, one worker thread per
 * OpenMP thread, each on a contiguous share of the images with a net of its own (net_share, OpenMP
 * set to one thread in it, as serve's workers run).  Each image's activations then stay in its
 * core's cache from one layer to the next (a batch's would not: MobileNetV2 at 224 px needs 4.8
 * MB for its widest activation per image, 154 MB for 32), and the threads never wait for each
 * other inside a layer.  A network with fused inverted-residual blocks (MobileNetV2,
 * EfficientNet-Lite: run[].dwpw) passes BY_IMAGE_PASS images at a time instead: its fused blocks
 * still run image by image on the one thread, but each block's weights, read from memory once
 * per pass, serve that many images (measured 8% faster for MobileNetV2 at batch 32 on 2
 * threads).  An image's logits are those of a batch-1 pass on one thread; with passes of several
 * images, up to the order of the sums of the linear head (gemm_sgemm's blocking depends on the
 * number of rows: ~1e-7 relative).  Deterministic for a batch size and thread count either way. */
#define BY_IMAGE_PASS 4

/* images per pass of m's workers (above) */
static int images_per_pass(const net *m) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->run[i].dwpw) return BY_IMAGE_PASS;
    return 1;
}

bool net_infer_by_image(const net *m) {
    if (!m->infer_only || m->batch < 2 || omp_in_parallel() || omp_get_max_threads() < 2) return false;
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].keep && i != net_output(m)) return false;
    return true;
}

typedef struct {
    net *w;
    const float *x;
    float *y;
    int n, k; /* images, and at most k per pass */
    size_t in, out;
    int rc;
    char err[256];
} image_job;

static void *image_worker(void *arg) {
    image_job *j = arg;
    omp_set_num_threads(1);
    j->rc = 0;
    for (int i = 0; i < j->n && j->rc == 0; i += j->k) {
        const int k = j->n - i < j->k ? j->n - i : j->k; /* no allocation: the workers hold j->k */
        const float *o = net_set_batch(j->w, k) < 0 ? NULL : net_forward(j->w, j->x + (size_t)i * j->in, false);
        if (!o) {
            j->rc = -1;
            snprintf(j->err, sizeof j->err, "%s", sn_last_error());
        } else {
            memcpy(j->y + (size_t)i * j->out, o, (size_t)k * j->out * sizeof(float));
        }
    }
    return NULL;
}

/* m's t worker nets, made (again) when there are fewer or their input size is not m's */
static int ensure_workers(net *m, int t) {
    if (m->n_workers >= t && m->workers[0]->nodes[0].h == m->nodes[0].h && m->workers[0]->nodes[0].w == m->nodes[0].w)
        return 0;
    for (int i = 0; i < m->n_workers; i++) net_free(m->workers[i]);
    free(m->workers);
    m->n_workers = 0;
    m->workers = calloc((size_t)t, sizeof(net *));
    if (!m->workers) return sn_error("out of memory for inference workers");
    for (; m->n_workers < t; m->n_workers++) {
        net *w = net_share(m);
        if (!w || net_set_batch(w, images_per_pass(m)) < 0) {
            net_free(w);
            return -1;
        }
        m->workers[m->n_workers] = w;
    }
    return 0;
}

const float *net_infer_forward_images(net *m) {
    const int n = m->batch, threads = omp_get_max_threads(), t = threads < n ? threads : n, last = net_output(m);
    if (t > 64 || ensure_workers(m, t) < 0) return t > 64 ? net_forward_from(m, 1, false) : NULL;
    pthread_t th[64];
    bool started[64] = {false};
    image_job jobs[64];
    const size_t in = node_size(&m->nodes[0]), out = node_size(&m->nodes[last]);
    for (int k = 0, at = 0; k < t; k++) {
        const int cnt = n / t + (k < n % t);
        jobs[k] = (image_job){.w = m->workers[k], .x = m->run[0].y + at * in, .y = m->run[last].y + at * out,
                              .n = cnt, .k = images_per_pass(m), .in = in, .out = out};
        at += cnt;
    }
    for (int k = 1; k < t; k++) started[k] = pthread_create(&th[k], NULL, image_worker, &jobs[k]) == 0;
    image_worker(&jobs[0]); /* the calling thread takes the first share */
    omp_set_num_threads(threads);
    for (int k = 1; k < t; k++) {
        if (started[k]) pthread_join(th[k], NULL);
        else image_worker(&jobs[k]); /* no thread: run its share here */
    }
    omp_set_num_threads(threads);
    for (int k = 0; k < t; k++)
        if (jobs[k].rc < 0) {
            sn_error("%s", jobs[k].err);
            return NULL;
        }
    return m->run[last].y;
}
