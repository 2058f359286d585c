/* test_net.c - the node-list engine: a small network using every op kind is differentiated
 * and checked by finite differences (directional derivatives per parameter tensor and for the
 * input path), freezing, BN freezing, determinism and error handling of the builders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "kernels/loss.h"
#include "nn/net.h"

enum { N = 4, H = 9, W = 7, C = 3, K = 5 };

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

static const int target[N] = {0, 3, 1, 4};

/* training-mode loss with the dropout mask of step `step` */
static double loss_at(net *m, const float *x, uint64_t step) {
    m->step = step - 1;
    const float *y = net_forward(m, x, true);
    return loss_softmax_ce(N, K, y, target, NULL);
}

int main(void) {
    net *m = build();
    if (!check(m != NULL, "build a net with every op kind")) return check_exit();
    check(net_set_batch(m, N) == 0, "set batch %d", N);
    float *x = malloc(sizeof(float) * N * H * W * C), *dl = malloc(sizeof(float) * N * K);
    fill_uniform(x, (size_t)N * H * W * C, 1);

    /* analytic gradients */
    const float *y = net_forward(m, x, true);
    uint64_t step = m->step;
    loss_softmax_ce(N, K, y, target, dl);
    net_zero_grad(m);
    net_backward(m, dl);
    float *g0 = malloc(sizeof(float) * m->n_floats);
    memcpy(g0, m->grad, sizeof(float) * m->n_floats);

    /* directional finite differences, one random direction per parameter tensor, central
     * difference with h = 1e-4.  h is small so that few ReLU/max-pool kinks are crossed (at 1e-2
     * they dominate the error); the float32 loss (~2e-7 rounding) then limits the absolute
     * agreement to ~1e-3, hence tol = 2% relative + 2e-3 absolute.  Biases before a
     * batch norm have an exactly zero gradient, which the absolute part covers. */
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
        double lp = loss_at(m, x, step);
        for (size_t j = 0; j < p->numel; j++) w[j] = save[j] - (float)h * v[j];
        double lm = loss_at(m, x, step);
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

    /* determinism: the same step gives bitwise the same loss and gradients */
    y = net_forward(m, x, true); /* move on a step, then replay the first one */
    m->step = step - 1;
    y = net_forward(m, x, true);
    loss_softmax_ce(N, K, y, target, dl);
    net_zero_grad(m);
    net_backward(m, dl);
    check(!memcmp(g0, m->grad, sizeof(float) * m->n_floats), "replaying a step gives bitwise-equal gradients");

    /* freezing groups 0 and 1: their grads stay zero, the head's are unchanged */
    net_freeze_groups(m, 2);
    m->step = step - 1;
    y = net_forward(m, x, true);
    loss_softmax_ce(N, K, y, target, dl);
    net_zero_grad(m);
    net_backward(m, dl);
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

    /* BN frozen: running statistics do not move in a training step */
    net_freeze_bn(m, 2, true);
    int rm = net_find_param(m, "b1.running_mean");
    float before = net_param(m, rm)[0];
    net_forward(m, x, true);
    check(rm >= 0 && net_param(m, rm)[0] == before, "frozen BN keeps its running mean");
    net_freeze_bn(m, 2, false);
    net_forward(m, x, true);
    check(net_param(m, rm)[0] != before, "training BN updates its running mean");

    /* eval mode: no dropout, deterministic across steps */
    float *e1 = malloc(sizeof(float) * N * K);
    memcpy(e1, net_forward(m, x, false), sizeof(float) * N * K);
    check(!memcmp(e1, net_forward(m, x, false), sizeof(float) * N * K), "eval forward is repeatable");
    net_freeze_weights(m); /* kept weight copies, inference primitives (maybe Winograd): close */
    float *f1 = malloc(sizeof(float) * N * K);
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
    free(f1);
    m->wkey = 0;

    /* initialisation is a function of the seed */
    net *m2 = build();
    if (!check(m2 != NULL, "build the same net again")) return check_exit();
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

    /* builder errors */
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
    net_free(m2);
    /* memory: only what backward needs is kept; the pool settles after one step */
    y = net_forward(m, x, true);
    bool transient_gone = true;
    for (int i = 1; i < m->n_nodes; i++)
        if ((net_node_state(m, i) & NET_NODE_TRANSIENT) && (net_node_state(m, i) & NET_NODE_HOLDS_Y)) transient_gone = false;
    check(transient_gone, "after a forward, batch-norm and ReLU outputs hold no memory (recomputed when needed)");
    loss_softmax_ce(N, K, y, target, dl);
    net_zero_grad(m);
    net_backward(m, dl);
    int blocks = m->n_pool;
    size_t pooled = 0;
    for (int i = 0; i < m->n_pool; i++) pooled += m->pool[i].cap;
    for (int k = 0; k < 2; k++) {
        y = net_forward(m, x, true);
        loss_softmax_ce(N, K, y, target, dl);
        net_zero_grad(m);
        net_backward(m, dl);
    }
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
    net_free(m);

    /* a ReLU whose input also feeds a residual add: the add's gradient reaches the input first,
     * so the ReLU accumulates (the path that recomputes its output); finite differences */
    net *r = net_create(5, 5, 3);
    int c = net_conv(r, 0, "c", 4, 3, 1, 1, 1, true);
    int rl = net_relu(r, c);
    int ad = net_add(r, rl, c);
    int gp = net_gap(r, ad);
    int fc = net_linear(r, gp, "fc", K, true);
    if (check(fc > 0 && net_set_batch(r, N) == 0, "a net where a ReLU's input has two consumers")) {
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
    free(x); free(dl); free(g0); free(e1);
    return check_exit();
}
