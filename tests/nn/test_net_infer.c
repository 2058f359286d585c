/* test_net_infer.c - networks prepared for inference (nn/net_infer.h) and the fused depthwise +
 * 1x1 kernel (kernels/conv_dwpw.h): for every zoo architecture and the fastai head, the prepared
 * network's logits equal the eval-mode forward of the network it was prepared from, at batch 1
 * and 3, on random inputs with random non-trivial batch-norm statistics; the source network is
 * untouched and still trains; a prepared network refuses to train; the plan fuses what it should.
 *
 * Tolerance: folding rounds each product gamma/sqrt(var+eps) * w once into the weight instead of
 * scaling each convolution's sum, and the fused kernels add the bias and residual before the sum
 * instead of after: every layer differs from the unprepared one by a few float roundings (~1e-7
 * relative), compounded through up to 50 layers.  The logits must agree within 2e-5 of their
 * largest magnitude (max |a - b| <= 2e-5 * max |ref|); the worst measured is 2e-6 (the errors are
 * printed).  Batch 3 runs image by image on worker threads when there are two threads or more. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/conv_dwpw.h"
#include "kernels/conv_winograd.h"
#include "kernels/eltwise.h"
#include "models/zoo.h"
#include "nn/net.h"
#include "nn/net_infer.h"

#define SIZE 32
#define RTOL 2e-5f
/* fused passes against the same prepared net's passes apart: the same weights, sums in another
 * order (worst measured 9e-7) */
#define RTOL_FUSED 5e-6f

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* non-trivial batch-norm statistics and affine parameters, and biases, from seed */
static void randomise_bn(net *m, uint64_t seed) {
    for (int p = 0; p < m->n_params; p++) {
        const param *q = &m->params[p];
        float *v = net_param(m, p);
        const node *d = &m->nodes[q->node];
        const bool bn = d->op == OP_BN, bias = ends_with(q->name, ".bias");
        for (size_t j = 0; j < q->numel; j++) {
            const float u = rng_uniform(seed, (uint64_t)p, j);
            if (bn && ends_with(q->name, ".running_var")) v[j] = 0.5f + 1.5f * u;
            else if (bn && ends_with(q->name, ".running_mean")) v[j] = 0.4f * (u - 0.5f);
            else if (bn && ends_with(q->name, ".weight")) v[j] = 0.6f + 0.8f * u;
            else if (bias) v[j] = 0.2f * (u - 0.5f);
        }
    }
}

static float *random_pixels(size_t cnt, uint64_t seed) {
    float *x = malloc(sizeof(float) * cnt);
    for (size_t i = 0; x && i < cnt; i++) x[i] = rng_normal(seed, 0x1f, i);
    return x;
}

static float *random_input(int n, uint64_t seed) { return random_pixels((size_t)n * SIZE * SIZE * 3, seed); }

static int count_op(const net *m, op_kind op) {
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++) k += m->nodes[i].op == op;
    return k;
}

/* the prepared net's logits against the unprepared eval forward, batch 1 and 3 */
static void compare(const char *what, net *m, int kept_bn) {
    randomise_bn(m, 7);
    net_freeze_weights(m); /* the same convolution algorithms on both sides */
    net *p = net_prepare_inference(m);
    if (!check(p != NULL, "%s: prepared (%s)", what, p ? "" : sn_last_error())) return;
    check(count_op(p, OP_BN) == kept_bn && count_op(p, OP_DROPOUT) == 0 && count_op(p, OP_DROPPATH) == 0,
          "%s: %d of %d batch norms left, no dropout or drop-path", what, count_op(p, OP_BN), count_op(m, OP_BN));
    const int K = (int)net_out_size(m);
    check(net_out_size(p) == (size_t)K, "%s: as many outputs (%d)", what, K);
    const int batches[2] = {1, 3};
    for (int b = 0; b < 2; b++) {
        const int n = batches[b];
        float *x = random_pixels((size_t)n * m->nodes[0].h * m->nodes[0].w * m->nodes[0].c, 100 + (uint64_t)n), *ref = malloc(sizeof(float) * (size_t)n * K);
        const float *y = NULL;
        if (x && ref && net_set_batch(m, n) == 0 && (y = net_forward(m, x, false))) memcpy(ref, y, sizeof(float) * (size_t)n * K);
        const float *got = y && net_set_batch(p, n) == 0 ? net_forward(p, x, false) : NULL;
        char name[96];
        snprintf(name, sizeof name, "%s batch %d: prepared logits = eval forward", what, n);
        if (check(got != NULL, "%s: both ran (%s)", name, got ? "" : sn_last_error())) check_close(name, got, ref, (size_t)n * K, RTOL, 0);
        free(x);
        free(ref);
    }
    net_free(p);
}

static net *zoo_at(const char *arch, model_head head, int h, int w) {
    model_opts o = model_default_opts();
    o.in_h = h, o.in_w = w;
    o.head = head;
    o.seed = 3;
    net *m = model_build(arch, 10, &o);
    check(m != NULL, "%s built", arch);
    return m;
}

static net *zoo(const char *arch, model_head head) { return zoo_at(arch, head, SIZE, SIZE); }

static void run_arch(const char *arch, model_head head) {
    net *m = zoo(arch, head);
    if (!m) return;
    char what[64];
    snprintf(what, sizeof what, "%s%s", arch, head == MODEL_HEAD_FASTAI ? " + fastai head" : "");
    compare(what, m, 0);
    net_free(m);
}

static void case_resnet18(void) { run_arch("resnet18", MODEL_HEAD_DEFAULT); }
static void case_resnet34(void) { run_arch("resnet34", MODEL_HEAD_DEFAULT); }
static void case_resnet50(void) { run_arch("resnet50", MODEL_HEAD_DEFAULT); }
static void case_mobilenet_v2(void) { run_arch("mobilenet_v2", MODEL_HEAD_DEFAULT); }
static void case_mobilenet_v2_tf(void) { run_arch("mobilenet_v2_tf", MODEL_HEAD_DEFAULT); }
static void case_efficientnet_lite0(void) { run_arch("efficientnet_lite0", MODEL_HEAD_DEFAULT); }
static void case_efficientnet_lite1(void) { run_arch("efficientnet_lite1", MODEL_HEAD_DEFAULT); }
static void case_efficientnet_lite2(void) { run_arch("efficientnet_lite2", MODEL_HEAD_DEFAULT); }
/* compare() of m on 1 thread and on 2, the thread count named after what */
static void compare_threads(const char *what, net *m) {
    const int threads = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        char name[80];
        snprintf(name, sizeof name, "%s, %d thread%s", what, t, t > 1 ? "s" : "");
        compare(name, m, 0);
        omp_set_num_threads(threads);
    }
}

/* ResNets at an odd, non-square input size, on one thread (the whole batch in one pass, each
 * block's residual updated in place by its last convolution) and on two (image by image) */
static void case_resnet_odd_sizes(void) {
    const char *archs[3] = {"resnet18", "resnet34", "resnet50"};
    for (int a = 0; a < 3; a++) {
        net *m = zoo_at(archs[a], MODEL_HEAD_DEFAULT, 45, 37);
        if (!m) continue;
        char what[64];
        snprintf(what, sizeof what, "%s 45x37", archs[a]);
        compare_threads(what, m);
        net_free(m);
    }
}

/* ResNets at 96 px, where the prepared net runs every Winograd tile: F(4x4) on the 24x24 maps of
 * the first stage, F(2x2) on 12x12 and 6x6, the direct convolution on 3x3 (conv2d_winograd_tile) */
static void case_resnet_winograd_tiles(void) {
    const char *archs[2] = {"resnet18", "resnet34"};
    for (int a = 0; a < 2; a++) {
        net *m = zoo_at(archs[a], MODEL_HEAD_DEFAULT, 96, 96);
        if (!m) continue;
        net *p = net_prepare_inference(m);
        int tiles[5] = {0};
        for (int i = 0; p && i < p->n_nodes; i++)
            if (p->nodes[i].op == OP_CONV && conv2d_winograd_takes(&p->nodes[i].conv))
                tiles[conv2d_winograd_tile(&p->nodes[i].conv)]++;
        check(p && tiles[4] > 0 && tiles[2] > 0 && tiles[0] > 0, "%s 96 px: Winograd F(4x4) on %d, F(2x2) on %d, "
              "direct on %d dense 3x3 stride-1 convolutions", archs[a], tiles[4], tiles[2], tiles[0]);
        net_free(p);
        char what[64];
        snprintf(what, sizeof what, "%s 96 px", archs[a]);
        compare_threads(what, m);
        net_free(m);
    }
}

/* residual adds of dense convolutions: onto the network input (which persists: a copy), onto the
 * convolution's own input (read twice), with ReLU6 / ReLU / no activation, in place onto a
 * strided convolution's output */
static net *conv_adds(void) {
    net *m = net_create(13, 11, 3);
    int x = net_relu6(m, net_add(m, net_conv(m, 0, "c1", 3, 3, 1, 1, 1, true), 0));
    x = net_relu(m, net_add(m, net_conv(m, x, "c2", 3, 3, 1, 1, 1, false), x));
    int c = net_bn(m, net_conv(m, net_relu(m, net_conv(m, x, "c3", 8, 3, 1, 1, 1, false)), "c4", 3, 3, 1, 1, 1, false),
                   "b4", 1e-5f, 0.1f);
    x = net_relu(m, net_add(m, c, x));
    const int d = net_conv(m, x, "d", 16, 3, 2, 1, 1, true);
    x = net_add(m, net_conv(m, x, "e", 16, 1, 2, 0, 1, true), d);
    x = net_linear(m, net_flatten(m, net_gap(m, x)), "fc", 5, true);
    net_init_params(m, 12);
    return m;
}

static void case_conv_adds(void) {
    net *m = conv_adds();
    if (!check(m != NULL && net_set_input_size(m, SIZE, SIZE) == 0, "small net built")) {
        net_free(m);
        return;
    }
    compare("residual adds of dense convolutions", m, 0);
    net *p = net_prepare_inference(m);
    int adds = 0, fused = 0;
    for (int i = 1; p && i < p->n_nodes; i++)
        if (p->nodes[i].op == OP_ADD) adds++, fused += (net_node_state(p, p->nodes[i].in0) & NET_NODE_FUSED) != 0;
    check(p && adds == 4 && fused == 4, "%d of %d adds compute their convolution in its pass", fused, adds);
    net_free(p);
    net_free(m);
}

/* conv2d_forward_keyed_add = conv2d_forward_keyed without activation, then eltwise_add_act_forward:
 * oneDNN's sum post-op (dense) and the scratch-copy path (grouped), batch 1 and 3.  oneDNN's
 * kernel with the post-op sums in its own order: a few roundings of the pre-activation values
 * (worst measured 1.03e-6 of the largest output), within 5e-6 */
static void case_conv_add_kernel(void) {
    struct { int h, w, cin, cout, k, s, g; sn_act a; } t[] = {
        {9, 7, 16, 16, 3, 1, 1, ACT_RELU}, {13, 11, 8, 24, 1, 2, 1, ACT_NONE}, {9, 9, 32, 32, 3, 1, 1, ACT_RELU6},
        {7, 10, 8, 12, 3, 1, 2, ACT_RELU},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        for (int n = 1; n <= 3; n += 2) {
            conv_desc d = {.h = t[k].h, .w = t[k].w, .cin = t[k].cin, .cout = t[k].cout, .kh = t[k].k, .kw = t[k].k,
                           .sh = t[k].s, .sw = t[k].s, .pt = t[k].k / 2, .pb = t[k].k / 2, .pl = t[k].k / 2,
                           .pr = t[k].k / 2, .groups = t[k].g};
            conv_desc_init(&d);
            const size_t xn = (size_t)n * d.h * d.w * d.cin, yn = (size_t)n * d.oh * d.ow * d.cout,
                         wn = (size_t)d.cout * d.kh * d.kw * (d.cin / d.groups);
            float *x = malloc(sizeof(float) * xn), *w = malloc(sizeof(float) * wn), *b = malloc(sizeof(float) * d.cout);
            float *y = malloc(sizeof(float) * yn), *ref = malloc(sizeof(float) * yn);
            if (!x || !w || !b || !y || !ref) {
                check(false, "out of memory");
            } else {
                fill_uniform(x, xn, 1 + k), fill_uniform(w, wn, 2 + k), fill_uniform(b, d.cout, 3 + k);
                fill_uniform(y, yn, 4 + k);
                conv2d_forward_keyed(&d, n, x, w, b, ref, 78);
                eltwise_add_act_forward(yn, ref, y, t[k].a, ref);
                d.act = t[k].a;
                char what[96];
                snprintf(what, sizeof what, "conv+add %dx%dx%d k%d s%d g%d -> %d act %d batch %d", d.h, d.w, d.cin, d.kh,
                         d.sh, d.groups, d.cout, (int)d.act, n);
                if (check(conv2d_forward_keyed_add(&d, n, x, w, b, y, 77) == 0, "%s: ran", what))
                    check_close(what, y, ref, yn, 5e-6f, 0);
            }
            free(x), free(w), free(b), free(y), free(ref);
        }
}

static void case_fastai_head(void) {
    run_arch("resnet18", MODEL_HEAD_FASTAI);
    run_arch("mobilenet_v2", MODEL_HEAD_FASTAI);
    run_arch("efficientnet_lite0", MODEL_HEAD_FASTAI);
}

/* a small net with every op kind, a batch norm that cannot be folded (its convolution has two
 * readers), a residual add with ReLU, and fastai's BN-dropout-linear */
static net *every_op(void) {
    net *m = net_create(13, 11, 3);
    int x = net_conv(m, 0, "c0", 8, 3, 2, 1, 1, false);
    int b = net_bn(m, x, "b0", 1e-5f, 0.1f);
    x = net_relu(m, net_add(m, b, x)); /* c0 read twice: b0 stays a batch norm */
    int r = x;
    x = net_relu6(m, net_bn(m, net_conv(m, x, "e", 24, 1, 1, 0, 1, false), "eb", 1e-3f, 0.1f));
    x = net_relu6(m, net_bn(m, net_conv_same(m, x, "dw", 24, 5, 1, 24, false), "dwb", 1e-3f, 0.1f));
    x = net_bn(m, net_conv(m, x, "p", 8, 1, 1, 0, 1, true), "pb", 1e-3f, 0.1f);
    x = net_add(m, r, net_droppath(m, x, 0.2f));
    x = net_maxpool(m, x, 3, 2, 1);
    x = net_conv_same(m, x, "g", 6, 3, 2, 2, true); /* grouped */
    pool_desc ap = {.kh = 2, .kw = 2, .sh = 1, .sw = 1, .pt = 0, .pb = 1, .pl = 0, .pr = 1};
    x = net_avgpool(m, x, ap);
    x = net_concatpool(m, x);
    x = net_flatten(m, x);
    x = net_dropout(m, net_bn(m, x, "hb", 1e-5f, 0.1f), 0.3f);
    x = net_relu(m, net_linear(m, x, "fc1", 10, true));
    x = net_linear(m, net_bn(m, x, "hb2", 1e-5f, 0.1f), "fc2", 5, true);
    net_init_params(m, 11);
    return m;
}

static void case_every_op(void) {
    net *m = every_op();
    if (!check(m != NULL, "small net built")) return;
    /* (compare() feeds SIZE x SIZE inputs) */
    if (check(net_set_input_size(m, SIZE, SIZE) == 0, "small net at %dx%d", SIZE, SIZE))
        compare("every op (b0 kept: its convolution has two readers)", m, 1);
    net_free(m);
}

/* preparing leaves the source's parameters bitwise as they were, and the source still trains */
static void case_source_unchanged(void) {
    net *m = zoo("mobilenet_v2", MODEL_HEAD_FASTAI);
    if (!m) return;
    randomise_bn(m, 9);
    float *before = malloc(sizeof(float) * m->n_floats);
    if (!before) return;
    memcpy(before, m->data, sizeof(float) * m->n_floats);
    net *p = net_prepare_inference(m);
    check(p && !memcmp(before, m->data, sizeof(float) * m->n_floats), "the source's parameters are unchanged");
    check(!m->infer_only && p && p->infer_only && net_num_trainable(p) == 0 && net_num_trainable(m) > 0,
          "only the prepared net is inference-only (%zu trainable floats in the source)", net_num_trainable(m));
    float *x = random_input(2, 5), *dl = calloc(2 * 10, sizeof(float));
    const float *y = x && dl && net_set_batch(m, 2) == 0 ? net_forward(m, x, true) : NULL;
    for (int k = 0; y && k < 2; k++) dl[k * 10 + k] = 1.0f;
    net_zero_grad(m);
    bool grads = false;
    if (check(y && net_backward(m, dl) == 0, "the source trains: forward and backward (%s)", y ? "" : sn_last_error()))
        for (size_t j = 0; j < m->n_floats && !grads; j++) grads = m->grad[j] != 0.0f;
    check(grads, "the source's backward gives gradients");
    free(x);
    free(dl);
    free(before);
    net_free(p);
    net_free(m);
}

/* a prepared net refuses training forwards and backward with an error naming the reason */
static void case_refuses_training(void) {
    net *m = zoo("resnet18", MODEL_HEAD_DEFAULT);
    net *p = m ? net_prepare_inference(m) : NULL;
    float *x = random_input(1, 6), dl[10] = {1};
    if (!check(p && x && net_set_batch(p, 1) == 0, "prepared")) goto out;
    check(net_forward(p, x, true) == NULL && strstr(sn_last_error(), "inference only"),
          "a training forward is refused: %s", sn_last_error());
    check(net_forward(p, x, false) != NULL, "an eval forward runs");
    check(net_backward(p, dl) < 0 && strstr(sn_last_error(), "inference only"), "backward is refused: %s",
          sn_last_error());
    net *sh = net_share(p);
    check(sh && net_set_batch(sh, 1) == 0 && net_forward(sh, x, true) == NULL, "a net sharing it refuses too");
    net_free(sh);
out:
    free(x);
    net_free(p);
    net_free(m);
}

/* the 1x1 expansion (a dense 1x1 convolution, through its ReLU/ReLU6) that depthwise convolution
 * dw of m reads, or -1 */
static int expansion_of(const net *m, int dw) {
    int a = m->nodes[dw].in0;
    if (m->nodes[a].op == OP_RELU || m->nodes[a].op == OP_RELU6) a = m->nodes[a].in0;
    const node *d = &m->nodes[a];
    return d->op == OP_CONV && d->conv.groups == 1 && d->conv.kh == 1 && d->conv.kw == 1 && d->conv.sh == 1 ? a : -1;
}

/* zoo architecture arch (*m) prepared for inference and sized for batch 1 (*p); false, both
 * freed, if that fails */
static bool prepared(const char *arch, net **m, net **p) {
    *m = zoo(arch, MODEL_HEAD_DEFAULT);
    *p = *m ? net_prepare_inference(*m) : NULL;
    if (check(*p && net_set_batch(*p, 1) == 0, "%s prepared and sized", arch)) return true;
    net_free(*p);
    net_free(*m);
    return false;
}

/* the plan of a prepared net: every depthwise convolution computed with its 1x1 projection and
 * its 1x1 expansion, each residual add of a projection in its pass (MobileNetV2,
 * EfficientNet-Lite), every add + ReLU of a ResNet in the pass of the block's last convolution */
static void case_plan(void) {
    const char *archs[3] = {"mobilenet_v2", "efficientnet_lite0", "resnet18"};
    for (int a = 0; a < 3; a++) {
        net *m, *p;
        if (!prepared(archs[a], &m, &p)) continue;
        int dw = 0, dw_fused = 0, adds = 0, adds_fused = 0, ex = 0, ex_fused = 0;
        for (int i = 1; i < p->n_nodes; i++) {
            const node *d = &p->nodes[i];
            const bool fused = net_node_state(p, i) & NET_NODE_FUSED;
            if (d->op == OP_CONV && conv_is_depthwise(&d->conv)) dw++, dw_fused += fused;
            if (d->op == OP_CONV && conv_is_depthwise(&d->conv) && expansion_of(p, i) >= 0)
                ex++, ex_fused += (net_node_state(p, d->in0) & NET_NODE_FUSED) != 0;
            if (d->op != OP_ADD) continue;
            adds++;
            /* a residual computed by the projection's pass: the projection is fused into the add;
             * an add + ReLU: the add is fused into the ReLU, the block's convolution into the add */
            const int c = p->nodes[d->in1].op == OP_CONV ? d->in1 : d->in0;
            adds_fused += a < 2 ? (net_node_state(p, c) & NET_NODE_FUSED) != 0
                                : fused && (net_node_state(p, d->in0) & NET_NODE_FUSED);
        }
        check(dw_fused == dw && adds_fused == adds && adds > 0 && ex_fused == ex && (a == 2 || ex > 0),
              "%s: %d of %d depthwise convolutions, %d of %d expansions and %d of %d residual adds fused", archs[a],
              dw_fused, dw, ex_fused, ex, adds_fused, adds);
        net_free(p);
        net_free(m);
    }
}

/* the head of MobileNetV2 and EfficientNet-Lite: the last 1x1 convolution and its ReLU6 computed
 * in the global average pool's pass (kernels/conv_dwpw.h: conv2d_pw_gap_forward) where this
 * build runs it; their logits are case mobilenet_v2's and the others' */
static void case_plan_head(void) {
    const char *archs[3] = {"mobilenet_v2", "mobilenet_v2_tf", "efficientnet_lite0"};
    for (int a = 0; a < 3; a++) {
        net *m, *p;
        if (!prepared(archs[a], &m, &p)) continue;
        int gaps = 0, fused = 0, takes = 0;
        for (int g = 1; g < p->n_nodes; g++) {
            const node *d = &p->nodes[g];
            if (d->op != OP_GAP) continue;
            const int c = p->nodes[d->in0].op == OP_CONV ? d->in0 : p->nodes[d->in0].in0;
            gaps++;
            takes += conv2d_pw_gap_takes(p->nodes[c].conv.cout);
            fused += (net_node_state(p, d->in0) & NET_NODE_FUSED) && (net_node_state(p, c) & NET_NODE_FUSED);
        }
        check(gaps == 1 && fused == takes, "%s: the last 1x1 convolution computed in the pool's pass (%d of %d)",
              archs[a], fused, takes);
        net_free(p);
        net_free(m);
    }
}

/* a batch run image by image on 2 threads, the workers passing several images at a time (7
 * images: 4 and 3 per worker), gives each image the logits of its batch-1 pass on one thread (up
 * to the order of the linear head's sums: within 1e-6 of the largest), and bitwise the same
 * logits a second time */
static void case_by_image_passes(void) {
    const char *archs[2] = {"mobilenet_v2", "efficientnet_lite0"};
    const int threads = omp_get_max_threads(), n = 7;
    for (int a = 0; a < 2; a++) {
        net *m, *p;
        if (!prepared(archs[a], &m, &p)) continue;
        float *x = random_input(n, 21), *one = malloc(sizeof(float) * 64 * n);
        const size_t K = net_out_size(p), in = (size_t)SIZE * SIZE * 3;
        if (!check(x && one && K <= 64, "%s: inputs allocated", archs[a])) {
            net_free(p), net_free(m), free(x), free(one);
            continue;
        }
        omp_set_num_threads(1);
        bool ok = net_set_batch(p, 1) == 0;
        for (int i = 0; i < n && ok; i++) {
            const float *y = net_forward(p, x + i * in, false);
            ok = y != NULL;
            if (ok) memcpy(one + i * K, y, sizeof(float) * K);
        }
        omp_set_num_threads(2);
        const float *all = ok && net_set_batch(p, n) == 0 ? net_forward(p, x, false) : NULL;
        char what[96];
        snprintf(what, sizeof what, "%s batch %d on 2 threads: each image's logits = its batch-1 pass's", archs[a], n);
        if (check(all != NULL, "%s: ran", what)) {
            check_close(what, all, one, K * n, 1e-6f, 0);
            memcpy(one, all, sizeof(float) * K * n);
            const float *again = net_forward(p, x, false);
            check(again && !memcmp(again, one, sizeof(float) * K * n), "%s: bitwise the same a second time", what);
        }
        omp_set_num_threads(threads);
        net_free(p), net_free(m), free(x), free(one);
    }
}

/* nets sharing a prepared net's parameters (serve's workers) give its logits, bitwise */
static void case_share(void) {
    net *m = zoo("efficientnet_lite0", MODEL_HEAD_DEFAULT);
    net *p = m ? net_prepare_inference(m) : NULL;
    net *sh = p ? net_share(p) : NULL;
    float *x = random_input(1, 8);
    const float *a = sh && x && net_set_batch(p, 1) == 0 && net_set_batch(sh, 1) == 0 ? net_forward(p, x, false) : NULL;
    const float *b = a ? net_forward(sh, x, false) : NULL;
    check(a && b && !memcmp(a, b, sizeof(float) * net_out_size(p)), "a shared prepared net gives the same logits");
    free(x);
    net_free(sh);
    net_free(p);
    net_free(m);
}

/* The fused blocks against the same prepared net without them, at an odd input size (45 x 39:
 * odd sizes and TF SAME's asymmetric padding at every stride-2 block): logits of the whole-block
 * passes (expansion, depthwise and projection) = those of the depthwise + projection passes with
 * the expansion apart (its output kept: net_keep) = those with every pass apart (activation
 * fusion off, which leaves no block fused), within RTOL_FUSED of their largest magnitude, batch 1
 * and 3. */
static void case_fused_vs_unfused(void) {
    const char *archs[3] = {"mobilenet_v2", "mobilenet_v2_tf", "efficientnet_lite0"};
    for (int a = 0; a < 3; a++) {
        net *m = zoo(archs[a], MODEL_HEAD_DEFAULT);
        if (!m || !check(net_set_input_size(m, 45, 39) == 0, "%s at 45x39", archs[a])) {
            net_free(m);
            continue;
        }
        randomise_bn(m, 13);
        net *p[3] = {net_prepare_inference(m), net_prepare_inference(m), net_prepare_inference(m)};
        int kept = 0;
        for (int i = 1; p[1] && i < p[1]->n_nodes; i++)
            if (p[1]->nodes[i].op == OP_CONV && conv_is_depthwise(&p[1]->nodes[i].conv) && expansion_of(p[1], i) >= 0)
                kept += net_keep(p[1], p[1]->nodes[i].in0) == 0;
        if (p[2]) net_set_act_fusion(p[2], false);
        const size_t K = net_out_size(m);
        for (int n = 1; n <= 3; n += 2) {
            float *x = malloc(sizeof(float) * (size_t)n * 45 * 39 * 3), *y[3] = {NULL, NULL, NULL};
            for (size_t i = 0; x && i < (size_t)n * 45 * 39 * 3; i++) x[i] = rng_normal(21, 0x2f, i);
            for (int k = 0; k < 3; k++) {
                const float *o = x && p[k] && net_set_batch(p[k], n) == 0 ? net_forward(p[k], x, false) : NULL;
                y[k] = o ? malloc(sizeof(float) * (size_t)n * K) : NULL;
                if (y[k]) memcpy(y[k], o, sizeof(float) * (size_t)n * K);
            }
            char what[2][128];
            snprintf(what[0], sizeof what[0], "%s 45x39 batch %d: whole blocks = every pass apart", archs[a], n);
            snprintf(what[1], sizeof what[1], "%s 45x39 batch %d: expansion apart (%d kept) = every pass apart",
                     archs[a], n, kept);
            if (check(y[0] && y[1] && y[2] && kept > 0, "%s: all three ran", what[0])) {
                check_close(what[0], y[0], y[2], (size_t)n * K, RTOL_FUSED, 0);
                check_close(what[1], y[1], y[2], (size_t)n * K, RTOL_FUSED, 0);
            }
            free(x), free(y[0]), free(y[1]), free(y[2]);
        }
        for (int k = 0; k < 3; k++) net_free(p[k]);
        net_free(m);
    }
}

static const test_case cases[] = {
    {"resnet18", case_resnet18},
    {"resnet34", case_resnet34},
    {"resnet50", case_resnet50},
    {"mobilenet_v2", case_mobilenet_v2},
    {"mobilenet_v2_tf", case_mobilenet_v2_tf},
    {"efficientnet_lite0", case_efficientnet_lite0},
    {"efficientnet_lite1", case_efficientnet_lite1},
    {"efficientnet_lite2", case_efficientnet_lite2},
    {"resnet_odd_sizes", case_resnet_odd_sizes},
    {"resnet_winograd_tiles", case_resnet_winograd_tiles},
    {"conv_adds", case_conv_adds},
    {"conv_add_kernel", case_conv_add_kernel},
    {"fastai_head", case_fastai_head},
    {"every_op", case_every_op},
    {"source_unchanged", case_source_unchanged},
    {"refuses_training", case_refuses_training},
    {"plan", case_plan},
    {"plan_head", case_plan_head},
    {"by_image_passes", case_by_image_passes},
    {"share", case_share},
    {"fused_vs_unfused", case_fused_vs_unfused},
};
TEST_MAIN(cases)
