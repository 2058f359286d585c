/* test_net.c - the node-list engine: a small network using every op kind is differentiated
 * and checked by finite differences (directional derivatives per parameter tensor and for the
 * input path), freezing, BN freezing, determinism, memory, the fusion plan, error handling of
 * the builders, and the Winograd convolution of a training step against the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/loss.h"
#include "nn/net.h"

enum { N = 4, H = 9, W = 7, C = 3, K = 5 };

static const int target[N] = {0, 3, 1, 4};

/* the test net: every op kind, three layer groups */
static net *build(void) {
    net *m = net_create(H, W, C);
    net_set_group(m, 0);
    int x = net_conv(m, 0, "c1", 8, 3, 1, 1, 1, true);
    x = net_bn(m, x, "b1", 1e-5f, 0.1f);
    int r1 = net_relu(m, x);
    x = net_conv(m, r1, "c2", 8, 3, 1, 1, 8, false); /* depthwise */
    x = net_bn(m, x, "b2", 1e-5f, 0.1f);
    x = net_add(m, x, r1);
    x = net_relu6(m, x);
    net_set_group(m, 1);
    x = net_maxpool(m, x, 3, 2, 1);
    x = net_conv_same(m, x, "c3", 6, 3, 2, 2, true); /* grouped, TF SAME */
    pool_desc ap = {.kh = 2, .kw = 2, .sh = 1, .sw = 1, .pt = 0, .pb = 1, .pl = 0, .pr = 1};
    x = net_avgpool(m, x, ap);
    net_set_group(m, 2);
    x = net_concatpool(m, x);
    x = net_flatten(m, x);
    x = net_bn(m, x, "hb", 1e-5f, 0.1f);
    x = net_dropout(m, x, 0.3f);
    x = net_linear(m, x, "fc1", 10, true);
    x = net_relu(m, x);
    int g = net_gap(m, x);
    x = net_linear(m, g, "fc2", K, true);
    if (x < 0) {
        printf("# build failed: %s\n", sn_last_error());
        net_free(m);
        return NULL;
    }
    net_init_params(m, 1234);
    return m;
}

/* the test net sized for N images, or NULL after a failed check */
static net *build_sized(void) {
    net *m = build();
    if (!m || net_set_batch(m, N) < 0) {
        check(false, "build the test net and size it for %d images: %s", N, sn_last_error());
        net_free(m);
        return NULL;
    }
    return m;
}

/* the input batch [N, H, W, C] */
static float *input(void) {
    float *x = malloc(sizeof(float) * N * H * W * C);
    if (x) fill_uniform(x, (size_t)N * H * W * C, 1);
    return x;
}

/* one training step (forward with the dropout mask of `step`, loss gradient, backward) from zero
 * gradients; returns the loss */
static double train_step(net *m, const float *x, uint64_t step) {
    float dl[N * K];
    m->step = step - 1;
    const float *y = net_forward(m, x, true);
    double loss = loss_softmax_ce(N, K, y, target, dl);
    net_zero_grad(m);
    net_backward(m, dl);
    return loss;
}

/* training-mode loss with the dropout mask of step `step` */
static double loss_at(net *m, const float *x, uint64_t step) {
    m->step = step - 1;
    const float *y = net_forward(m, x, true);
    return loss_softmax_ce(N, K, y, target, NULL);
}

/* directional finite differences, one random direction per parameter tensor, central difference
 * with h = 1e-4.  h is small so that few ReLU/max-pool kinks are crossed (at 1e-2 they dominate
 * the error); the float32 loss (~2e-7 rounding) then limits the absolute agreement to ~1e-3,
 * hence tol = 2% relative + 2e-3 absolute.  Biases before a batch norm have an exactly zero
 * gradient, which the absolute part covers. */
static void case_gradcheck(void) {
    net *m = build();
    if (!check(m != NULL, "build a net with every op kind")) return;
    check(net_set_batch(m, N) == 0, "set batch %d", N);
    float *x = input(), *g0 = malloc(sizeof(float) * m->n_floats);
    train_step(m, x, 1);
    memcpy(g0, m->grad, sizeof(float) * m->n_floats);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < m->n_params; i++) {
        param *p = &m->params[i];
        if (p->buffer) continue;
        float *v = malloc(sizeof(float) * p->numel), *w = net_param(m, i);
        fill_uniform(v, p->numel, 100 + i);
        double an = 0;
        for (size_t j = 0; j < p->numel; j++) an += (double)g0[p->off + j] * v[j];
        float *save = malloc(sizeof(float) * p->numel);
        memcpy(save, w, sizeof(float) * p->numel);
        const double h = 1e-4;
        for (size_t j = 0; j < p->numel; j++) w[j] = save[j] + (float)h * v[j];
        double lp = loss_at(m, x, 1);
        for (size_t j = 0; j < p->numel; j++) w[j] = save[j] - (float)h * v[j];
        double lm = loss_at(m, x, 1);
        memcpy(w, save, sizeof(float) * p->numel);
        double fd = (lp - lm) / (2 * h);
        double err = fabs(fd - an) / fabs(an);
        if (fabs(an) > 1e-2 && err > worst) worst = err;
        checked++;
        check(fabs(fd - an) <= 2e-2 * fabs(an) + 2e-3, "d loss / d %s along a random direction: analytic %.6g, "
              "finite difference %.6g", p->name, an, fd);
        free(v);
        free(save);
    }
    note("finite differences: %d parameter tensors, worst relative error %.3g (of those with |derivative| > 0.01)", checked, worst);
    free(x);
    free(g0);
    net_free(m);
}

/* the same step gives bitwise the same loss and gradients */
static void case_determinism(void) {
    net *m = build_sized();
    if (!m) return;
    float *x = input(), *g0 = malloc(sizeof(float) * m->n_floats);
    train_step(m, x, 1);
    memcpy(g0, m->grad, sizeof(float) * m->n_floats);
    train_step(m, x, 2); /* move on a step, then replay the first one */
    train_step(m, x, 1);
    check(!memcmp(g0, m->grad, sizeof(float) * m->n_floats), "replaying a step gives bitwise-equal gradients");
    free(x);
    free(g0);
    net_free(m);
}

/* freezing groups 0 and 1: their grads stay zero, the head's are unchanged */
static void case_freeze_groups(void) {
    net *m = build_sized();
    if (!m) return;
    float *x = input(), *g0 = malloc(sizeof(float) * m->n_floats);
    train_step(m, x, 1);
    memcpy(g0, m->grad, sizeof(float) * m->n_floats);
    net_freeze_groups(m, 2);
    train_step(m, x, 1);
    bool frozen_zero = true, head_same = true;
    for (int i = 0; i < m->n_params; i++) {
        param *p = &m->params[i];
        if (p->buffer) continue;
        for (size_t j = 0; j < p->numel; j++) {
            float g = m->grad[p->off + j];
            if (p->group < 2 && g != 0) frozen_zero = false;
            if (p->group == 2 && g != g0[p->off + j]) head_same = false;
        }
    }
    check(frozen_zero, "frozen groups get no gradient");
    check(head_same, "the head's gradients are unchanged by freezing the body");
    check(!(net_node_state(m, 1) & NET_NODE_NEEDS_GRAD), "nothing is propagated into the frozen body");
    check(net_num_trainable(m) < m->n_floats, "trainable count drops when frozen (%zu)", net_num_trainable(m));
    net_freeze_groups(m, 0);
    check(net_node_state(m, 1) & NET_NODE_NEEDS_GRAD, "unfreezing: the body takes gradients again");
    free(x);
    free(g0);
    net_free(m);
}

/* BN frozen: running statistics do not move in a training step */
static void case_freeze_bn(void) {
    net *m = build_sized();
    if (!m) return;
    float *x = input();
    net_freeze_bn(m, 2, true);
    int rm = net_find_param(m, "b1.running_mean");
    float before = net_param(m, rm)[0];
    net_forward(m, x, true);
    check(rm >= 0 && net_param(m, rm)[0] == before, "frozen BN keeps its running mean");
    net_freeze_bn(m, 2, false);
    net_forward(m, x, true);
    check(net_param(m, rm)[0] != before, "training BN updates its running mean");
    free(x);
    net_free(m);
}

/* eval mode: no dropout, deterministic across steps; frozen weights close to plain ones */
static void case_eval(void) {
    net *m = build_sized();
    if (!m) return;
    float *x = input(), *e1 = malloc(sizeof(float) * N * K), *f1 = malloc(sizeof(float) * N * K);
    net_forward(m, x, true); /* running statistics away from their init */
    memcpy(e1, net_forward(m, x, false), sizeof(float) * N * K);
    check(!memcmp(e1, net_forward(m, x, false), sizeof(float) * N * K), "eval forward is repeatable");
    net_freeze_weights(m); /* kept weight copies, inference primitives (maybe Winograd): close */
    memcpy(f1, net_forward(m, x, false), sizeof(float) * N * K);
    double fe = 0, fs = 0;
    for (int i = 0; i < N * K; i++) fe = fmax(fe, fabs(f1[i] - e1[i])), fs = fmax(fs, fabs(e1[i]));
    bool same = fe <= 2e-5 * fs && !memcmp(f1, net_forward(m, x, false), sizeof(float) * N * K);
    net *sh = net_share(m);
    same &= sh && net_set_batch(sh, N) == 0 && sh->wkey == m->wkey &&
            !memcmp(f1, net_forward(sh, x, false), sizeof(float) * N * K);
    net_free(sh);
    check(same, "frozen weights: eval forward within 2e-5 of the plain one (max err %.2g of %.2g), repeatable "
          "bitwise, and the same from a net sharing them", fe, fs);
    free(x);
    free(e1);
    free(f1);
    net_free(m);
}

/* initialisation is a function of the seed */
static void case_init(void) {
    net *m = build(), *m2 = build();
    if (!check(m && m2, "build the same net twice")) {
        net_free(m);
        net_free(m2);
        return;
    }
    net_init_params(m2, 1234);
    int c1 = net_find_param(m2, "c1.weight");
    net_init_params(m, 1234);
    check(c1 >= 0 && !memcmp(net_param(m, c1), net_param(m2, c1), sizeof(float) * m->params[c1].numel),
          "the same seed gives the same initial weights");
    net_init_params(m2, 99);
    check(memcmp(net_param(m, c1), net_param(m2, c1), sizeof(float) * m->params[c1].numel) != 0,
          "another seed gives other weights");
    check(m->params[c1].shape[0] == 8 && m->params[c1].shape[1] == 3 && m->params[c1].ohwi,
          "conv weight described as PyTorch OIHW [8,3,3,3]");
    net_free(m);
    net_free(m2);
}

static void case_builder_errors(void) {
    net *b = net_create(8, 8, 3);
    int a1 = net_conv(b, 0, "a", 4, 3, 1, 1, 1, false);
    int a2 = net_conv(b, 0, "b", 5, 3, 1, 1, 1, false);
    int bad_add = net_add(b, a1, a2);
    check(bad_add < 0 && strstr(sn_last_error(), "shapes differ"), "add of mismatched shapes: %s", sn_last_error());
    check(net_linear(b, a1, "fc", 3, true) < 0 && strstr(sn_last_error(), "fc"), "linear on a map: %s",
          sn_last_error());
    check(net_conv(b, a1, "g", 6, 3, 1, 1, 4, false) < 0, "groups not dividing channels: %s", sn_last_error());
    check(net_relu(b, -1) < 0, "a failed input propagates");
    check(net_create(0, 8, 3) == NULL, "empty input shape rejected");
    net_free(b);
}

/* running an unsized net, or from a node whose earlier input was not kept: errors, no crash */
static void case_run_errors(void) {
    net *m = build();
    float *x = input(), dl[N * K] = {0};
    if (!check(m && x, "build the test net")) goto done;
    char msg[256];
    bool ok = !net_forward(m, x, true) && strstr(sn_last_error(), "net_set_batch");
    snprintf(msg, sizeof msg, "%s", sn_last_error());
    ok = ok && net_backward(m, dl) < 0 && strstr(sn_last_error(), "net_set_batch");
    check(ok, "an unsized net: forward and backward fail naming net_set_batch (%s)", msg);
    int c2 = net_find_param(m, "c2.weight");
    c2 = c2 >= 0 ? m->params[c2].node : -1;
    ok = c2 > 0 && net_set_batch(m, N) == 0 && net_forward(m, x, true) && !net_forward_from(m, c2 + 2, true) &&
         strstr(sn_last_error(), "not computed");
    check(ok, "net_forward_from past a convolution that is not kept: %s", sn_last_error());
done:
    free(x);
    net_free(m);
}

/* only what backward needs is kept; the pool settles after one step */
static void case_memory(void) {
    net *m = build_sized();
    if (!m) return;
    float *x = input();
    net_forward(m, x, true);
    bool transient_gone = true;
    for (int i = 1; i < m->n_nodes; i++) {
        unsigned s = net_node_state(m, i);
        if ((s & NET_NODE_TRANSIENT) && (s & NET_NODE_HOLDS_Y)) transient_gone = false;
    }
    check(transient_gone, "after a forward, batch-norm and ReLU outputs hold no memory (recomputed when needed)");
    train_step(m, x, m->step + 1);
    int blocks = m->n_pool;
    size_t pooled = 0;
    for (int i = 0; i < m->n_pool; i++) pooled += m->pool[i].cap;
    for (int k = 0; k < 2; k++) train_step(m, x, m->step + 1);
    size_t pooled2 = 0, all = 0;
    for (int i = 0; i < m->n_pool; i++) pooled2 += m->pool[i].cap;
    for (int i = 0; i < m->n_nodes; i++) all += (size_t)N * m->nodes[i].h * m->nodes[i].w * m->nodes[i].c;
    check(m->n_pool == blocks && pooled2 == pooled, "the buffer pool does not grow from step to step (%d blocks)", blocks);
    check(pooled2 < 2 * all, "pooled activations and gradients (%zu floats) < 2x one copy of every output (%zu)", pooled2,
          all);
    net_forward(m, x, false);
    bool eval_gone = true;
    for (int i = 1; i < m->n_nodes; i++)
        if (net_node_state(m, i) & NET_NODE_POOLED_Y) eval_gone = false;
    check(eval_gone, "after an eval-mode forward no pooled output is held (no backward will read them)");
    free(x);
    net_free(m);
}

/* a ReLU whose input also feeds a residual add: the add's gradient reaches the input first,
 * so the ReLU accumulates (the path that recomputes its output); finite differences */
static void case_relu_two_readers(void) {
    net *r = net_create(5, 5, 3);
    int c = net_conv(r, 0, "c", 4, 3, 1, 1, 1, true);
    int rl = net_relu(r, c);
    int ad = net_add(r, rl, c);
    int gp = net_gap(r, ad);
    int fc = net_linear(r, gp, "fc", K, true);
    if (check(fc > 0 && net_set_batch(r, N) == 0, "a net where a ReLU's input has two consumers")) {
        float dl[N * K];
        net_init_params(r, 7);
        float *xr = malloc(sizeof(float) * N * 5 * 5 * 3);
        fill_uniform(xr, (size_t)N * 5 * 5 * 3, 9);
        const float *yr = net_forward(r, xr, true);
        loss_softmax_ce(N, K, yr, target, dl);
        net_zero_grad(r);
        net_backward(r, dl);
        int pw = net_find_param(r, "c.weight");
        float *w = net_param(r, pw), *gw = net_grad(r, pw), *v = malloc(sizeof(float) * r->params[pw].numel);
        memcpy(v, gw, sizeof(float) * r->params[pw].numel); /* along the gradient: the biggest signal */
        double an = 0;
        for (size_t j = 0; j < r->params[pw].numel; j++) an += (double)gw[j] * v[j];
        const double h = 1e-2;
        for (size_t j = 0; j < r->params[pw].numel; j++) w[j] += (float)h * v[j];
        double lp = loss_softmax_ce(N, K, net_forward(r, xr, true), target, NULL);
        for (size_t j = 0; j < r->params[pw].numel; j++) w[j] -= 2 * (float)h * v[j];
        double lm = loss_softmax_ce(N, K, net_forward(r, xr, true), target, NULL);
        double fd = (lp - lm) / (2 * h);
        check(an > 1e-3 && fabs(fd - an) <= 2e-2 * fabs(an) + 1e-4,
              "d loss / d c.weight along the gradient: analytic %.6g, finite difference %.6g", an, fd);
        free(xr);
        free(v);
    }
    net_free(r);
}

/* an inverted-residual block: stem conv, BN, ReLU; 1x1 conv + bias, ReLU6; depthwise conv + bias,
 * ReLU6; 1x1 conv; pool and classifier.  nodes[] gets the indices of stem, bn, expand, relu6 of the
 * expansion, depthwise, relu6 of the depthwise. */
static net *build_block(int nodes[6]) {
    net *m = net_create(6, 6, 3);
    int s = net_conv(m, 0, "s", 4, 3, 1, 1, 1, false);
    int b = net_bn(m, s, "sb", 1e-5f, 0.1f);
    int x = net_relu(m, b);
    int e = net_conv(m, x, "e", 8, 1, 1, 0, 1, true);
    int r1 = net_relu6(m, e);
    int d = net_conv(m, r1, "d", 8, 3, 1, 1, 8, true);
    int r2 = net_relu6(m, d);
    x = net_conv(m, r2, "p", 4, 1, 1, 0, 1, false);
    x = net_gap(m, x);
    x = net_linear(m, x, "fc", K, true);
    int idx[6] = {s, b, e, r1, d, r2};
    memcpy(nodes, idx, sizeof idx);
    if (x < 0 || net_set_batch(m, N) < 0) {
        check(false, "build the block: %s", sn_last_error());
        net_free(m);
        return NULL;
    }
    net_init_params(m, 11);
    return m;
}

/* gradients of one training step of the block; malloc'd */
static float *block_grads(net *m, const float *x) {
    float dl[N * K];
    fill_uniform(dl, N * K, 12);
    net_zero_grad(m);
    if (!net_forward(m, x, true) || net_backward(m, dl) < 0) return NULL;
    float *g = malloc(sizeof(float) * m->n_floats);
    if (g) memcpy(g, m->grad, sizeof(float) * m->n_floats);
    return g;
}

/* the plan: decided when sized, redecided by net_set_act_fusion, net_keep and net_freeze_groups;
 * fused and unfused passes give bitwise the same gradients */
static void case_fusion_plan(void) {
    net *t = build_sized();
    if (t) { /* c1 (stem) -> b1 -> r1; c2 -> b2 -> add(b2, r1) */
        int b1 = net_find_param(t, "b1.weight"), b2 = net_find_param(t, "b2.weight");
        int nb1 = b1 >= 0 ? t->params[b1].node : -1, nb2 = b2 >= 0 ? t->params[b2].node : -1;
        int fused = 0;
        for (int i = 0; i < t->n_nodes; i++) fused += (net_node_state(t, i) & NET_NODE_FUSED) != 0;
        check((net_node_state(t, nb1) & NET_NODE_FUSED) && (net_node_state(t, nb2) & NET_NODE_FUSED) && fused == 2,
              "test net: b1 fused into its ReLU, b2 into the add, nothing else fused (%d)", fused);
        check(net_node_state(t, 1) & NET_NODE_TRANSIENT, "test net: the stem convolution is transient");
        net_free(t);
    }
    int n[6];
    net *m = build_block(n);
    if (!m) return;
    enum { S, B, E, R1, D, R2 };
    float *x = malloc(sizeof(float) * N * 6 * 6 * 3);
    fill_uniform(x, (size_t)N * 6 * 6 * 3, 13);
    unsigned e = net_node_state(m, n[E]), r1 = net_node_state(m, n[R1]), d = net_node_state(m, n[D]),
             r2 = net_node_state(m, n[R2]), b = net_node_state(m, n[B]);
    check((e & NET_NODE_FUSED) && (d & NET_NODE_FUSED) && (r1 & NET_NODE_CONV_ACT) && (r2 & NET_NODE_CONV_ACT) &&
          (b & NET_NODE_FUSED), "block: both convolutions + ReLU6 fused, the batch norm fused into its ReLU");
    check(!(r1 & NET_NODE_TRANSIENT) && !(r2 & NET_NODE_TRANSIENT) && (net_node_state(m, n[S]) & NET_NODE_TRANSIENT),
          "block: the fused ReLU6 outputs persist, the stem is transient");
    float *g_fused = block_grads(m, x);
    net_set_act_fusion(m, false);
    e = net_node_state(m, n[E]), r1 = net_node_state(m, n[R1]);
    check(!(e & NET_NODE_FUSED) && !(r1 & NET_NODE_CONV_ACT) && (net_node_state(m, n[B]) & NET_NODE_FUSED),
          "net_set_act_fusion(false): the ReLU6 is its own pass again (the batch norm stays fused)");
    float *g_plain = block_grads(m, x);
    check(g_fused && g_plain && !memcmp(g_fused, g_plain, sizeof(float) * m->n_floats),
          "block: fused and unfused gradients bitwise equal");
    net_set_act_fusion(m, true);
    check(net_keep(m, n[E]) == 0 && !(net_node_state(m, n[E]) & NET_NODE_FUSED) &&
          !(net_node_state(m, n[R1]) & NET_NODE_CONV_ACT) && (net_node_state(m, n[R2]) & NET_NODE_CONV_ACT),
          "net_keep of the expansion convolution: its ReLU6 is no longer fused into it, the other one still is");
    float *g_kept = block_grads(m, x);
    check(g_fused && g_kept && !memcmp(g_fused, g_kept, sizeof(float) * m->n_floats),
          "block with the expansion kept: gradients bitwise equal");
    net_freeze_groups(m, 1);
    bool none = true;
    for (int i = 0; i < m->n_nodes; i++) none &= !(net_node_state(m, i) & NET_NODE_NEEDS_GRAD);
    check(none, "net_freeze_groups: with every group frozen no node needs a gradient");
    free(g_fused);
    free(g_plain);
    free(g_kept);
    free(x);
    net_free(m);
}

static float *abs_copy(const float *a, size_t n) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; p && i < n; i++) p[i] = fabsf(a[i]);
    return p;
}

/* input -> 1x1 convolution a (kept) -> 3x3 convolution b + bias -> ReLU on an h x w map, batch 3,
 * one training step: b's forward (with its ReLU) against the reference convolution of a's output,
 * bound sum |x||w| + |b|, and a's weight gradient, which b's backward data pass feeds, against
 * a's weight gradient (same backend) from the reference input gradient of b, bound the weight
 * gradient of |x| and sum |dy||w|.  With bn, b (kept) -> batch norm -> ReLU: b's forward, which
 * runs with the batch norm's statistics, against the reference (not a's gradient).  The tolerance is kernels/test_winograd.c's for the tile
 * conv2d_winograd_tile gives the map.  The same step with CONV_ALGO_DIRECT differs (the
 * convolutions did run on Winograd). */
static void winograd_step(int h, int w, double tol, bool bn) {
    enum { NB = 3, CI = 12, CA = 16, CB = 20 };
    net *m = net_create(h, w, CI);
    const int a = net_conv(m, 0, "a", CA, 1, 1, 0, 1, false);
    const int b = net_conv(m, net_keep(m, a) < 0 ? -1 : a, "b", CB, 3, 1, 1, 1, true);
    const int top = bn ? net_bn(m, net_keep(m, b) < 0 ? -1 : b, "bn", 1e-5f, 0.1f) : b;
    if (!check(net_relu(m, top) > 0 && net_set_batch(m, NB) == 0, "the network: %s", sn_last_error())) return;
    net_init_params(m, 3);
    const conv_desc da = m->nodes[a].conv, db = m->nodes[b].conv;
    const size_t xn = (size_t)NB * h * w * CI, an = (size_t)NB * h * w * CA, yn = (size_t)NB * h * w * CB;
    const size_t wan = (size_t)CA * CI, wbn = (size_t)CB * 9 * CA;
    float *x = malloc(sizeof(float) * xn), *dout = malloc(sizeof(float) * yn), *y = malloc(sizeof(float) * yn);
    float *ref = malloc(sizeof(float) * yn), *bound = malloc(sizeof(float) * yn), *dwa = malloc(sizeof(float) * wan);
    float *g = malloc(sizeof(float) * yn), *dxb = calloc(an, sizeof(float)), *bdx = calloc(an, sizeof(float));
    float *dwa_ref = calloc(wan, sizeof(float)), *bdw = calloc(wan, sizeof(float));
    const float *wb = net_param(m, net_find_param(m, "b.weight")), *bb = net_param(m, net_find_param(m, "b.bias"));
    const float *out = NULL;
    if (check(x && dout && y && ref && bound && dwa && g && dxb && bdx && dwa_ref && bdw, "tensors")) {
        fill_uniform(x, xn, 21), fill_uniform(dout, yn, 22);
        net_zero_grad(m);
        out = net_forward(m, x, true);
    }
    if (check(out && net_backward(m, dout) == 0, "a training step: %s", sn_last_error())) {
        memcpy(y, bn ? net_node_y(m, b) : out, sizeof(float) * yn);
        memcpy(dwa, net_grad(m, net_find_param(m, "a.weight")), sizeof(float) * wan);
        const float *ya = net_node_y(m, a);
        float *aya = abs_copy(ya, an), *awb = abs_copy(wb, wbn), *abb = abs_copy(bb, CB), *ax = abs_copy(x, xn);
        conv2d_ref_forward(&db, NB, ya, wb, bb, ref);
        conv2d_ref_forward(&db, NB, aya, awb, abb, bound);
        for (size_t i = 0; i < yn; i++) {
            ref[i] = ref[i] > 0 || bn ? ref[i] : 0;
            g[i] = y[i] > 0 ? dout[i] : 0; /* the ReLU's mask, from its output */
        }
        double e = max_rel_error(y, ref, bound, yn);
        check(e <= tol, "%dx%d%s: forward max |y - ref| / bound = %.3g (<= %.0e)", h, w, bn ? " + batch norm" : "", e,
              tol);
        float *ag = abs_copy(g, yn);
        conv2d_ref_backward_data(&db, NB, g, wb, dxb);
        conv2d_ref_backward_data(&db, NB, ag, awb, bdx);
        conv2d_backward_weights(&da, NB, x, dxb, dwa_ref, NULL);
        conv2d_ref_backward_weights(&da, NB, ax, bdx, bdw, NULL);
        e = max_rel_error(dwa, dwa_ref, bdw, wan);
        if (!bn) /* (with the batch norm between, g is not b's output gradient) */
            check(e <= tol, "%dx%d: a's weight gradient through b's backward data: max |dw - ref| / bound = %.3g "
                  "(<= %.0e)", h, w, e, tol);
        free(aya), free(awb), free(abb), free(ax), free(ag);
        net_set_conv_algo(m, CONV_ALGO_DIRECT);
        net_zero_grad(m);
        out = net_forward(m, x, true);
        check(out && net_backward(m, dout) == 0 && memcmp(bn ? net_node_y(m, b) : out, y, sizeof(float) * yn) &&
                  memcmp(dwa, net_grad(m, net_find_param(m, "a.weight")), sizeof(float) * wan),
              "%dx%d: the direct convolution rounds differently", h, w);
    }
    free(x), free(dout), free(y), free(ref), free(bound), free(dwa), free(g), free(dxb), free(bdx), free(dwa_ref);
    free(bdw);
    net_free(m);
}

/* the training forward and backward data pass of a dense 3x3 stride-1 convolution on Winograd
 * F(2x2) (a 10x9 map) and F(4x4) (22x20) */
static void case_winograd_train(void) {
    winograd_step(10, 9, 2e-6, false);
    winograd_step(22, 20, 2e-5, false);
    winograd_step(10, 9, 2e-6, true);
    winograd_step(22, 20, 2e-5, true);
}

static const test_case cases[] = {
    {"gradcheck", case_gradcheck},
    {"determinism", case_determinism},
    {"freeze_groups", case_freeze_groups},
    {"freeze_bn", case_freeze_bn},
    {"eval", case_eval},
    {"init", case_init},
    {"builder_errors", case_builder_errors},
    {"run_errors", case_run_errors},
    {"memory", case_memory},
    {"relu_two_readers", case_relu_two_readers},
    {"fusion_plan", case_fusion_plan},
    {"winograd_train", case_winograd_train},
};
TEST_MAIN(cases)
