/* test_efficientnet.c - EfficientNet-Lite0/1/2 from the zoo and the drop-path op it uses.
 *   structure: parameter counts (SOURCE.txt of the shared weights), blocks, names, groups, 5x5
 *     depthwise with TensorFlow 'SAME' padding, batch norms, drop-path rates, classifier dropout; the
 *     other archs build no drop-path node and keep their dropout under the default options;
 *   drop-path: the mask is rng.h's under (seed, step * 4096 + node, sample), eval is identity,
 *     finite differences of a small net through it in training;
 *   proofs (model_proof.h) against the PyPI package efficientnet-lite-pytorch 0.1.0 in PyTorch
 *     (tools/fixtures_efficientnet.py): lite0 and lite2, eval and train mode, without drop-path,
 *     and lite0 in train mode with drop-path 0.2 on the masks both sides draw from stylenet's rng. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_proof.h"
#include "core/rng.h"

static int count_op(const net *m, op_kind op) {
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++) k += m->nodes[i].op == op;
    return k;
}

/* blocks = the number of _blocks.<i>._project_conv layers */
static int count_blocks(const net *m) {
    int b = 0;
    char name[96];
    for (;; b++) {
        snprintf(name, sizeof name, "_blocks.%d._project_conv.weight", b);
        if (net_find_param(m, name) < 0) return b;
    }
}

static void case_structure(void) {
    static const size_t params[3] = {4652008, 5416680, 6092072}; /* SOURCE.txt */
    static const int blocks[3] = {16, 21, 21}, last_ch[3] = {320, 320, 352};
    static const float dropout[3] = {0.2f, 0.2f, 0.3f};
    for (int v = 0; v < 3; v++) {
        char arch[32];
        snprintf(arch, sizeof arch, "efficientnet_lite%d", v);
        net *m = model_build(arch, 0, NULL);
        if (!check(m != NULL, "%s builds (1000 classes): %s", arch, m ? "" : sn_last_error())) continue;
        check(model_num_params(m) == params[v], "%s: %zu parameters (the package: %zu)", arch, model_num_params(m),
              params[v]);
        check(count_blocks(m) == blocks[v], "%s: %d blocks (%d)", arch, count_blocks(m), blocks[v]);
        check(model_body_features(arch) == 1280, "%s: body features 1280", arch);
        char name[96];
        snprintf(name, sizeof name, "_blocks.%d._project_conv.weight", blocks[v] - 1);
        int pl = net_find_param(m, name), head = net_find_param(m, "_conv_head.weight");
        check(pl >= 0 && m->params[pl].shape[0] == last_ch[v] && head >= 0 && m->params[head].shape[0] == 1280 &&
                  m->params[head].shape[1] == last_ch[v],
              "%s: last block projects to %d channels, _conv_head %d -> 1280", arch, last_ch[v], last_ch[v]);
        int dp = 0;
        float pmax = 0, pdrop = -1;
        for (int i = 0; i < m->n_nodes; i++) {
            if (m->nodes[i].op == OP_DROPPATH && m->nodes[i].p > pmax) pmax = m->nodes[i].p;
            dp += m->nodes[i].op == OP_DROPPATH;
            if (m->nodes[i].op == OP_DROPOUT) pdrop = m->nodes[i].p;
        }
        /* the last residual block is the second to last block: rate 0.2 x (blocks - 2) / blocks */
        const float want = (float)(0.2f * ((double)(blocks[v] - 2) / blocks[v]));
        check(dp == count_op(m, OP_ADD) && dp > 0 && pmax == want,
              "%s: a drop-path on each of the %d residual branches, the last at rate %g (%g)", arch, dp, pmax, want);
        check(pdrop == dropout[v], "%s: classifier dropout %g (%g)", arch, pdrop, dropout[v]);
        net_free(m);
    }
    net *m = model_build("efficientnet_lite0", 0, NULL);
    if (!m) return;
    /* _blocks.3: the first 5x5 block (stride 2) on 56x56 at 224: SAME pads 1 before, 2 after */
    int dw = net_find_param(m, "_blocks.3._depthwise_conv.weight");
    const conv_desc *c = dw >= 0 ? &m->nodes[m->params[dw].node].conv : NULL;
    check(c && c->kh == 5 && c->kw == 5 && c->sh == 2 && c->groups == c->cin && c->cin == 144 && c->h == 56 &&
              c->pt == 1 && c->pb == 2 && c->pl == 1 && c->pr == 2 && m->nodes[m->params[dw].node].p_b < 0,
          "_blocks.3._depthwise_conv: depthwise 5x5 stride 2 over 144 channels, SAME pads t1 b2 l1 r2, no bias");
    int stem = net_find_param(m, "_conv_stem.weight");
    c = stem >= 0 ? &m->nodes[m->params[stem].node].conv : NULL;
    check(c && c->cout == 32 && c->pt == 0 && c->pb == 1 && c->oh == 112, "_conv_stem: 3x3/2 to 32, SAME pads 0/1");
    int b0 = net_find_param(m, "_blocks.0._bn0.weight"), e1 = net_find_param(m, "_blocks.1._expand_conv.weight");
    check(b0 < 0 && e1 >= 0 && net_find_param(m, "_blocks.0._depthwise_conv.weight") >= 0,
          "_blocks.0 has no expansion (ratio 1), _blocks.1 has");
    int bn = net_find_param(m, "_blocks.5._bn1.weight");
    check(bn >= 0 && m->nodes[m->params[bn].node].eps == 1e-3f && m->nodes[m->params[bn].node].momentum == 0.01f,
          "batch norms: eps 1e-3, momentum 0.01 (TF 0.99)");
    int g0 = net_find_param(m, "_blocks.4._project_conv.weight"), g1 = net_find_param(m, "_blocks.5._expand_conv.weight");
    int fc = net_find_param(m, "_fc.weight"), hd = net_find_param(m, "_bn1.weight");
    check(stem >= 0 && g0 >= 0 && g1 >= 0 && hd >= 0 && fc >= 0 && m->params[stem].group == 0 &&
              m->params[g0].group == 0 && m->params[g1].group == 1 && m->params[hd].group == 1 &&
              m->params[fc].group == 2,
          "groups: stem.._blocks.4 (to stride 8) | _blocks.5 (stride 16) .. _bn1 | _fc");
    net_free(m);
    model_opts o = model_default_opts();
    o.drop_connect = 0;
    m = model_build("efficientnet_lite2", 0, &o);
    check(m && count_op(m, OP_DROPPATH) == 0, "drop_connect 0: no drop-path nodes");
    net_free(m);
    static const char *others[] = {"resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v2_tf"};
    for (int a = 0; a < 5; a++) { /* dropout and drop_connect -1 by default: the other archs as they were */
        m = model_build(others[a], 0, NULL);
        float pdrop = -1;
        for (int i = 0; m && i < m->n_nodes; i++)
            if (m->nodes[i].op == OP_DROPOUT) pdrop = m->nodes[i].p;
        check(m && count_op(m, OP_DROPPATH) == 0 && count_op(m, OP_DROPOUT) == (a == 3) &&
                  (a != 3 || pdrop == 0.2f),
              "%s, default options: no drop-path node, %s", others[a],
              a == 3 ? "classifier dropout 0.2" : "no dropout node");
        net_free(m);
    }
    m = model_build("efficientnet_lite9", 0, NULL);
    const char *e = sn_last_error();
    check(!m && strstr(e, "efficientnet_lite0") && strstr(e, "efficientnet_lite2"),
          "an unknown arch names the EfficientNet-Lite ones: %s", e);
}

/* ---------------------------------------------------------------- drop-path */

#define DP_N 6
#define DP_H 3
#define DP_W 4
#define DP_C 5
#define DP_K 3
#define DP_P 0.5f
static const int dp_target[DP_N] = {0, 2, 1, 1, 0, 2};

/* input -> conv "c" 1x1 -> bn "b" (kept) -> drop-path (node 3, kept) -> add(input) -> gap -> linear "fc" */
static net *dp_build(void) {
    net *m = net_create(DP_H, DP_W, DP_C);
    if (!m) return NULL;
    int x = net_conv(m, 0, "c", DP_C, 1, 1, 0, 1, true);
    x = net_bn(m, x, "b", 1e-3f, 0.01f);
    x = net_droppath(m, x, DP_P);
    x = net_add(m, 0, x);
    x = net_linear(m, net_gap(m, x), "fc", DP_K, true);
    if (x < 0) {
        net_free(m);
        return NULL;
    }
    net_init_params(m, 7);
    if (net_keep(m, 2) < 0 || net_keep(m, 3) < 0 || net_set_batch(m, DP_N) < 0) {
        net_free(m);
        return NULL;
    }
    return m;
}

/* training-mode loss with the masks of step 1 (the step counter is set back first) */
static double dp_loss(net *m, const float *x, float *dl) {
    m->step = 0;
    const float *y = net_forward(m, x, true);
    return y ? loss_softmax_ce(DP_N, DP_K, y, dp_target, dl) : NAN;
}

static void case_droppath_mask(void) {
    net *m = dp_build();
    if (!check(m != NULL, "build a net with a drop-path: %s", m ? "" : sn_last_error())) return;
    const size_t per = DP_H * DP_W * DP_C;
    float x[DP_N * DP_H * DP_W * DP_C];
    fill_uniform(x, sizeof x / sizeof x[0], 3);
    m->step = 0;
    net_forward(m, x, true);
    const float *b = net_node_y(m, 3), *bn = net_node_y(m, 2);
    /* each sample of the drop-path's output: zero, or the batch norm's output x 1/(1-p) (bitwise),
     * as rng.h's stream step * 4096 + node decides (step 1, node 3) */
    int dropped = 0, bad = 0;
    for (int s = 0; s < DP_N; s++) {
        const bool keep = !(rng_uniform(m->seed, 1 * 4096 + 3, (uint64_t)s) < DP_P);
        dropped += !keep;
        for (size_t j = 0; j < per; j++) bad += b[s * per + j] != (keep ? bn[s * per + j] * (1.0f / (1 - DP_P)) : 0.0f);
    }
    check(bad == 0 && dropped > 0 && dropped < DP_N, "training: drop-path zeroes the samples rng.h drops (%d of %d) "
          "and scales the others by 1/(1-p)", dropped, DP_N);
    uint64_t step = m->step;
    net_forward(m, x, false);
    check(m->step == step, "eval forwards do not advance the step counter");
    float first[DP_N * DP_H * DP_W * DP_C];
    memcpy(first, net_node_y(m, 3), sizeof first);
    m->step = 41;
    net_forward(m, x, false);
    check(!memcmp(first, net_node_y(m, 3), sizeof first), "eval: drop-path is the identity, whatever the step");
    net_free(m);
}

/* directional finite differences through a drop-path in training (masks of step 1 both ways) */
static void case_droppath_gradcheck(void) {
    net *m = dp_build();
    if (!check(m != NULL, "build a net with a drop-path")) return;
    float x[DP_N * DP_H * DP_W * DP_C], dl[DP_N * DP_K];
    fill_uniform(x, sizeof x / sizeof x[0], 5);
    dp_loss(m, x, dl);
    net_zero_grad(m);
    check(net_backward(m, dl) == 0, "backward");
    float *g0 = malloc(sizeof(float) * m->n_floats);
    memcpy(g0, m->grad, sizeof(float) * m->n_floats);
    for (int i = 0; i < m->n_params; i++) {
        param *p = &m->params[i];
        if (p->buffer) continue;
        float *v = malloc(sizeof(float) * p->numel), *w = net_param(m, i), *save = malloc(sizeof(float) * p->numel);
        fill_uniform(v, p->numel, 100 + i);
        memcpy(save, w, sizeof(float) * p->numel);
        double an = 0;
        for (size_t j = 0; j < p->numel; j++) an += (double)g0[p->off + j] * v[j];
        const double h = 1e-3;
        for (size_t j = 0; j < p->numel; j++) w[j] = save[j] + (float)h * v[j];
        double lp = dp_loss(m, x, NULL);
        for (size_t j = 0; j < p->numel; j++) w[j] = save[j] - (float)h * v[j];
        double lm = dp_loss(m, x, NULL);
        memcpy(w, save, sizeof(float) * p->numel);
        const double fd = (lp - lm) / (2 * h);
        check(fabs(fd - an) <= 2e-2 * fabs(an) + 2e-3, "d loss / d %s along a random direction through the drop-path: "
              "analytic %.6g, finite difference %.6g", p->name, an, fd);
        free(v);
        free(save);
    }
    free(g0);
    net_free(m);
}

/* ---------------------------------------------------------------- proofs against the package */

/* the oracle's "droppath_nodes" (the node indices whose masks it drew) are m's drop-path nodes */
static void check_droppath_nodes(const net *m, const proof_io *io, const char *tag) {
    const char *want = st_meta(io->ref, "droppath_nodes");
    char got[256] = "";
    size_t len = 0;
    for (int i = 0; i < m->n_nodes && len < sizeof got; i++)
        if (m->nodes[i].op == OP_DROPPATH)
            len += (size_t)snprintf(got + len, sizeof got - len, "%s%d", len ? " " : "", i);
    check(want && !strcmp(want, got), "%s: drop-path nodes %s (the oracle drew masks for %s)", tag, got,
          want ? want : "(no droppath_nodes metadata)");
}

static bool dc_train_state(net *m, const proof_io *io, const char *tag, const char *state) {
    (void)state;
    m->step = 0; /* the oracle drew the masks of the first training forward (step 1) */
    return proof_train_one(m, io, tag);
}

/* lite<variant> with its own classifier (_fc, 10 classes) at the fixture's 64x80, dropout 0;
 * drop_connect 0 (no drop-path) or 0.2 with the oracle's masks (tag "_dc") */
static void prove_lite(int variant, float drop_connect) {
    char arch[32], tag[48], state[96];
    snprintf(arch, sizeof arch, "efficientnet_lite%d", variant);
    snprintf(tag, sizeof tag, "%s%s", arch, drop_connect > 0 ? "_dc" : "");
    snprintf(state, sizeof state, "models_%s_state.safetensors", tag);
    proof_io io;
    if (!proof_open(&io, tag, 10)) return;
    const st_tensor *tx = st_find(io.ref, "x");
    model_opts o = model_default_opts();
    o.in_h = (int)tx->shape[1];
    o.in_w = (int)tx->shape[2];
    o.dropout = 0;
    o.drop_connect = drop_connect;
    net *m = model_build(arch, 10, &o);
    if (check(m != NULL, "%s: build %dx%d, 10 classes%s", tag, o.in_h, o.in_w, m ? "" : sn_last_error())) {
        st_file *sf = open_fixture(state);
        if (sf) {
            check_names(m, sf, tag);
            st_close(sf);
        }
        if (proof_eval(m, &io, tag, state)) {
            if (drop_connect > 0) {
                check(count_op(m, OP_DROPPATH) > 0, "%s: %d drop-path nodes", tag, count_op(m, OP_DROPPATH));
                check_droppath_nodes(m, &io, tag);
                note("%s: the oracle dropped (block:sample) %s", tag, st_meta(io.ref, "dropped") ? st_meta(io.ref, "dropped") : "?");
                proof_both(m, &io, tag, NULL, dc_train_state);
            } else {
                proof_train(m, &io, tag);
            }
        }
    }
    net_free(m);
    proof_close(&io);
}

static void case_proof_lite0(void) { prove_lite(0, 0); }
static void case_proof_lite2(void) { prove_lite(2, 0); }
static void case_proof_lite0_droppath(void) { prove_lite(0, 0.2f); }

/* the shared ImageNet checkpoints (legacy torch.save files) through predict: the three check
 * photos' top-1 classes as the weights' SOURCE.txt gives them (output i = labels line i + 1:
 * chickadee 20, daisy 986, Egyptian cat 286), and lite0's probabilities as PyTorch computed them
 * there (0.913 / 0.355 / 0.423; resizing differs a little from PyTorch's, hence 0.02) */
static void imagenet_check(void) {
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    static const char *files[] = {"efficientnet-lite0-57934424.pth", "efficientnet-lite1-77cc7160.pth",
                                  "efficientnet-lite2-9656183e.pth"};
    static const int want[3] = {19, 985, 285};
    static const double lite0_p[3] = {0.913, 0.355, 0.423};
    static char out[1 << 16];
    char photos[3][4096];
    static const char *names[3] = {"bird.png", "sunflower.png", "cat.png"};
    for (int i = 0; i < 3; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "weights/imagenet-check/%s", names[i]);
        snprintf(photos[i], sizeof photos[i], "%s", shared_path(rel));
    }
    for (int v = 0; v < 3; v++) {
        char rel[128], model[4096];
        snprintf(rel, sizeof rel, "weights/efficientnet-lite/%s", files[v]);
        snprintf(model, sizeof model, "%s", shared_path(rel));
        int rc = run_capture(out, sizeof out, "%s predict --model %s --arch efficientnet_lite%d --top 1 --json %s %s %s",
                             bin, model, v, photos[0], photos[1], photos[2]);
        if (!check(rc == 0, "predict with %s runs (%d%s)", files[v], rc, rc == 0 ? "" : flat_tail(out, 200))) continue;
        const char *p = out;
        for (int i = 0; i < 3; i++) {
            int idx = -1;
            double prob = -1;
            p = strstr(p, "\"index\":");
            if (p) sscanf(p, "\"index\": %d", &idx);
            const char *q = p ? strstr(p, "\"probability\":") : NULL;
            if (q) sscanf(q, "\"probability\": %lf", &prob);
            check(idx == want[i] && (v != 0 || fabs(prob - lite0_p[i]) < 0.02),
                  "efficientnet_lite%d, %s: top-1 output %d (want %d), p %.3f", v, names[i], idx, want[i], prob);
            if (p) p++;
        }
    }
}

static const test_case cases[] = {
    {"imagenet_check", imagenet_check},
    {"structure", case_structure},
    {"droppath_mask", case_droppath_mask},
    {"droppath_gradcheck", case_droppath_gradcheck},
    {"proof_lite0", case_proof_lite0},
    {"proof_lite2", case_proof_lite2},
    {"proof_lite0_droppath", case_proof_lite0_droppath},
};
TEST_MAIN(cases)
