/* test_mobilenet.c - MobileNetV2 from the zoo.
 *   torchvision layout: names/shapes/count/groups/init, and the whole-network proof against PyTorch
 *     (model_proof.h).
 *   TF-slim layout (mobilenet_v2_tf): parameter count and the convolution nodes, in order, against
 *     the TFLite file's CONV_2D / DEPTHWISE_CONV_2D operators (weight shape, stride, TensorFlow
 *     'SAME' padding, input/output size, fused ReLU6, bias), read both from the fixture table that
 *     tools/fixtures_models.py wrote with the `tflite` Python package and straight from the file
 *     with io/tflite.h; then the numbers: the file's weights dequantised by the oracle, loaded by
 *     name, a forward pass on the three imagenet-check photos against PyTorch's float pass with
 *     TF padding (logits rtol 1e-4), and the top-1 classes SOURCE.txt gives; a training step with
 *     each ReLU6 fused into its convolution (conv_desc.act, the default) bitwise equal to one with
 *     separate ReLU6 passes (whose kernels test_conv and test_eltwise prove against PyTorch), and
 *     the memory the fusion saves. */
#include "model_proof.h"
#include "io/tflite.h"
#include "io/tflite_net.h"

#define TF_PARAMS 3489097 /* sum of the file's conv weight + bias sizes (SOURCE.txt: 3,489,097) */

static int relu6_after(const net *m, int i) {
    for (int j = i + 1; j < m->n_nodes; j++)
        if (m->nodes[j].in0 == i && m->nodes[j].op == OP_RELU6) return 1;
    return 0;
}

/* torchvision's mobilenet_v2: parameter count, groups, sizes, dropout, init, depthwise layers */
static void test_torchvision_structure(void) {
    net *m = model_build("mobilenet_v2", 0, NULL);
    if (!check(m != NULL, "mobilenet_v2 builds (default 1000 classes): %s", m ? "" : sn_last_error())) return;
    check(model_num_params(m) == 3504872, "mobilenet_v2: %zu parameters (torchvision: 3504872)", model_num_params(m));
    int f18 = net_find_param(m, "features.18.1.weight");
    int g0 = net_find_param(m, "features.6.conv.2.weight"), g1 = net_find_param(m, "features.7.conv.0.0.weight");
    int cl = net_find_param(m, "classifier.1.weight"), st = net_find_param(m, "features.0.0.weight");
    check(f18 >= 0 && g0 >= 0 && g1 >= 0 && cl >= 0 && st >= 0 && m->params[st].group == 0 &&
              m->params[g0].group == 0 && m->params[g1].group == 1 && m->params[f18].group == 1 &&
              m->params[cl].group == 2,
          "mobilenet_v2: groups features.0-6 | features.7-18 | classifier");
    if (f18 >= 0) {
        const node *d = &m->nodes[m->params[f18].node];
        check(d->h == 7 && d->w == 7 && d->c == 1280, "features.18 gives 7x7x1280 at 224 (%dx%dx%d)", d->h, d->w, d->c);
    }
    int dropouts = 0;
    float p = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_DROPOUT) dropouts++, p = m->nodes[i].p;
    check(dropouts == 1 && p == 0.2f, "classifier.0 is Dropout(0.2)");
    if (cl >= 0) {
        const float *w = net_param(m, cl);
        double s2 = 0;
        size_t n = m->params[cl].numel;
        for (size_t j = 0; j < n; j++) s2 += (double)w[j] * w[j];
        check(fabs(sqrt(s2 / n) / 0.01 - 1) < 0.02 && m->params[cl + 1].init == INIT_ZERO,
              "init classifier.1: normal std %.5f (torchvision 0.01), bias 0", sqrt(s2 / n));
    }
    int dw = net_find_param(m, "features.2.conv.1.0.weight");
    check(dw >= 0 && m->params[dw].shape[0] == 96 && m->params[dw].shape[1] == 1 &&
              m->nodes[m->params[dw].node].conv.groups == 96 && m->nodes[m->params[dw].node].conv.sh == 2,
          "features.2.conv.1.0 is a stride-2 depthwise 3x3 over 96 channels");
    net_free(m);
}

/* conv nodes of the TF net vs the fixture's table of the file's ops */
static void test_tf_against_table(net *m) {
    st_file *f = open_fixture("models_mnv2tf_convs.safetensors");
    if (!f) return;
    size_t n;
    float *t = fixture_f32(f, "convs", &n);
    const st_tensor *tt = st_find(f, "convs");
    if (t && tt) {
        const int rows = (int)tt->shape[0], cols = (int)tt->shape[1];
        int k = 0, bad = 0;
        char first[200] = "";
        for (int i = 0; i < m->n_nodes; i++) {
            const node *d = &m->nodes[i];
            if (d->op != OP_CONV) continue;
            if (k >= rows) { bad++; continue; }
            const float *r = t + (size_t)k * cols;
            const conv_desc *c = &d->conv;
            const param *w = &m->params[d->p_w];
            int dwise = c->groups > 1 && c->groups == c->cin;
            int got[17] = {dwise, c->cout, c->kh, c->kw, w->shape[1], c->sh, c->sw, c->pt, c->pb, c->pl, c->pr,
                           c->h, c->w, c->oh, c->ow, relu6_after(m, i) ? 3 : 0, d->p_b >= 0};
            for (int j = 0; j < 17 && j < cols; j++)
                if ((int)r[j] != got[j] && !bad++)
                    snprintf(first, sizeof first, "conv %d (%s) column %d: ours %d, file %d", k, d->name, j, got[j],
                             (int)r[j]);
            k++;
        }
        check(k == rows && bad == 0, "mobilenet_v2_tf: %d conv nodes in order match the file's %d conv ops "
              "(kind, shape, stride, SAME pads, sizes, ReLU6, bias) %s", k, rows, first);
    }
    free(t);
    st_close(f);
}

/* the same straight from the .tflite file with io/tflite.h */
static void test_tf_against_file(net *m) {
    const char *path = shared_path("weights/mobilenet_v2_1.0_224_quant.tflite");
    tfl_model *f = tfl_open(path);
    if (!check(f != NULL, "open %s: %s", path, f ? "" : sn_last_error())) return;
    int k = 0, bad = 0, nconv = 0, node_i = 0;
    char first[256] = "";
    for (int o = 0; o < tfl_num_ops(f); o++) {
        const tfl_op *op = tfl_op_at(f, o);
        if (op->builtin != TFL_OP_CONV_2D && op->builtin != TFL_OP_DEPTHWISE_CONV_2D) continue;
        nconv++;
        while (node_i < m->n_nodes && m->nodes[node_i].op != OP_CONV) node_i++;
        if (node_i >= m->n_nodes) { bad++; continue; }
        const node *d = &m->nodes[node_i];
        const conv_desc *c = &d->conv;
        const param *w = &m->params[d->p_w];
        const tfl_tensor *in = tfl_tensor_at(f, op->inputs[0]), *wt = tfl_tensor_at(f, op->inputs[1]),
                         *bt = op->n_inputs > 2 && op->inputs[2] >= 0 ? tfl_tensor_at(f, op->inputs[2]) : NULL,
                         *out = tfl_tensor_at(f, op->outputs[0]);
        const bool dw = op->builtin == TFL_OP_DEPTHWISE_CONV_2D;
        /* file weights: conv [O, KH, KW, I], depthwise [1, KH, KW, C]; ours OIHW [O, I/g, KH, KW] */
        int wo = dw ? wt->shape[3] : wt->shape[0], wi = dw ? 1 : wt->shape[3];
        int pt, pb, pl, pr;
        conv_same_padding(in->shape[1], wt->shape[1], op->stride_h, &pt, &pb);
        conv_same_padding(in->shape[2], wt->shape[2], op->stride_w, &pl, &pr);
        bool ok = op->padding == TFL_PAD_SAME && w->shape[0] == wo && w->shape[1] == wi &&
                  w->shape[2] == wt->shape[1] && w->shape[3] == wt->shape[2] && (c->groups == c->cin) == dw &&
                  c->sh == op->stride_h && c->sw == op->stride_w && c->pt == pt && c->pb == pb && c->pl == pl &&
                  c->pr == pr && c->h == in->shape[1] && c->w == in->shape[2] && c->cin == in->shape[3] &&
                  c->oh == out->shape[1] && c->ow == out->shape[2] && c->cout == out->shape[3] &&
                  (op->activation == TFL_ACT_RELU6) == (relu6_after(m, node_i) == 1) &&
                  (bt != NULL) == (d->p_b >= 0) && (!bt || bt->shape[0] == c->cout);
        if (!ok && !bad++)
            snprintf(first, sizeof first, "op %d %s (%s) vs node %d %s", o, tfl_op_name(op->builtin), wt->name,
                     node_i, d->name);
        k++;
        node_i++;
    }
    int ours = 0;
    for (int i = 0; i < m->n_nodes; i++) ours += m->nodes[i].op == OP_CONV;
    check(bad == 0 && nconv == ours && nconv == 53,
          "mobilenet_v2_tf vs %s read by io/tflite.h: %d conv ops, %d conv nodes, all in order with the same weight "
          "shape, stride, SAME padding, sizes, ReLU6 and bias %s", "the .tflite", nconv, ours, first);
    tfl_close(f);
}

/* mobilenet_v2_tf: parameter count, folded BN, groups, and its conv nodes against the file */
static void test_tf_structure(void) {
    net *m = model_build("mobilenet_v2_tf", 0, NULL);
    if (!check(m != NULL, "mobilenet_v2_tf builds (224x224, 1001 classes): %s", m ? "" : sn_last_error())) return;
    check(model_num_params(m) == TF_PARAMS, "mobilenet_v2_tf: %zu parameters (the file's convs: %d)",
          model_num_params(m), TF_PARAMS);
    int bn = 0, adds = 0;
    for (int i = 0; i < m->n_nodes; i++) bn += m->nodes[i].op == OP_BN, adds += m->nodes[i].op == OP_ADD;
    check(bn == 0 && adds == 10, "mobilenet_v2_tf: BN folded (%d BN nodes), 10 residual adds (%d)", bn, adds);
    int g0 = net_find_param(m, "MobilenetV2/expanded_conv_5/project.weight"),
        g1 = net_find_param(m, "MobilenetV2/expanded_conv_6/expand.weight"),
        g2 = net_find_param(m, "MobilenetV2/Logits/Conv2d_1c_1x1.bias");
    check(g0 >= 0 && g1 >= 0 && g2 >= 0 && m->params[g0].group == 0 && m->params[g1].group == 1 &&
              m->params[g2].group == 2,
          "mobilenet_v2_tf: groups as torchvision's (expanded_conv_6 = features.7 starts group 1)");
    model_summary(m, stdout);
    test_tf_against_table(m);
    test_tf_against_file(m);
    net_free(m);
}

/* mobilenet_v2_tf on the three check photos: the oracle's dequantised weights loaded by name,
 * and the same net filled by net_load_tflite from the file, against PyTorch's logits */
static void test_tf_logits(void) {
    net *m = model_build("mobilenet_v2_tf", 0, NULL);
    if (!check(m != NULL, "mobilenet_v2_tf builds (224x224, 1001 classes): %s", m ? "" : sn_last_error())) return;
    proof_io io;
    if (proof_open(&io, "mnv2tf", 1001)) {
        double t0 = now_s();
        int r = net_load_safetensors(m, fixture_path("models_mnv2tf_state.safetensors"), NULL);
        if (check(r == m->n_params, "mobilenet_v2_tf: load the dequantised file weights by name (%d params) %s", r,
                  r < 0 ? sn_last_error() : "") &&
            check(net_set_batch(m, io.n) == 0, "batch %d", io.n)) {
            const float *y = net_forward(m, io.x, false);
            compare_tensor("mobilenet_v2_tf: logits of the 3 check photos vs PyTorch (TF padding)", io.ref, "logits",
                           y, (size_t)io.n * 1001, PROOF_RTOL_LOGITS);
            float *top = fixture_f32(io.ref, "top1", NULL);
            int good = 0, best[3] = {0, 0, 0};
            for (int i = 0; i < io.n && i < 3 && top; i++) {
                for (int c = 1; c < 1001; c++)
                    if (y[i * 1001 + c] > y[i * 1001 + best[i]]) best[i] = c;
                good += best[i] == (int)top[i];
            }
            check(good == 3 && best[0] == 20 && best[1] == 986 && best[2] == 286,
                  "mobilenet_v2_tf top-1: bird %d, sunflower %d, cat %d (SOURCE.txt: 20, 986, 286)", best[0], best[1],
                  best[2]);
            free(top);
        }
        note("mobilenet_v2_tf: load + forward of 3 images at 224 %.2f s", now_s() - t0);
        /* the same net filled by io/tflite_net.h straight from the .tflite file (conv ops onto our
         * conv nodes in order): its dequantisation against the oracle's */
        net *m2 = model_build("mobilenet_v2_tf", 0, NULL);
        r = m2 ? net_load_tflite(m2, shared_path("weights/mobilenet_v2_1.0_224_quant.tflite")) : -1;
        if (check(r >= 0, "mobilenet_v2_tf: net_load_tflite maps the file onto the zoo net%s%s", r < 0 ? ": " : "",
                  r < 0 ? sn_last_error() : "") &&
            check(net_set_batch(m2, io.n) == 0, "batch %d", io.n)) {
            const float *y = net_forward(m2, io.x, false);
            compare_tensor("mobilenet_v2_tf loaded by net_load_tflite: logits vs PyTorch", io.ref, "logits", y,
                           (size_t)io.n * 1001, PROOF_RTOL_LOGITS);
        }
        net_free(m2);
        proof_close(&io);
    }
    net_free(m);
}

/* one training step of mobilenet_v2_tf + head at 64 px, batch 3: output, loss gradient w.r.t.
 * every parameter; fused (default) against unfused, bitwise; and the pool's high-water mark */
static void tf_step(bool unfused, float **out, float **grad, size_t *n_out, size_t *n_grad, size_t *pool_top) {
    net *m = model_build("mobilenet_v2_tf", 7, NULL);
    *out = *grad = NULL;
    if (!m || net_set_input_size(m, 64, 64) < 0 || net_set_batch(m, 3) < 0) {
        net_free(m);
        return;
    }
    net_init_params(m, 5);
    net_set_act_fusion(m, !unfused);
    size_t nx = (size_t)3 * 64 * 64 * 3;
    float *x = malloc(nx * sizeof(float)), *dout = malloc(3 * 7 * sizeof(float));
    fill_uniform(x, nx, 31);
    fill_uniform(dout, 21, 32);
    net_zero_grad(m);
    const float *y = net_forward(m, x, true);
    *n_out = 21;
    *out = malloc(21 * sizeof(float));
    if (y) memcpy(*out, y, 21 * sizeof(float));
    if (!y || net_backward(m, dout) < 0) {
        free(*out);
        *out = NULL;
    }
    *n_grad = m->n_floats;
    *grad = malloc(m->n_floats * sizeof(float));
    memcpy(*grad, m->grad, m->n_floats * sizeof(float));
    *pool_top = m->arena_top;
    free(x), free(dout);
    net_free(m);
}

/* the training step fused and unfused: bitwise the same, and the fused one uses no more memory */
static void test_tf_fused_training(void) {
    float *o1, *g1, *o2, *g2;
    size_t no, ng, no2, ng2, top1, top2;
    tf_step(false, &o1, &g1, &no, &ng, &top1);
    tf_step(true, &o2, &g2, &no2, &ng2, &top2);
    size_t nonzero = 0;
    for (size_t i = 0; g1 && i < ng; i++) nonzero += g1[i] != 0.0f;
    check(o1 && o2 && ng == ng2 && !memcmp(o1, o2, no * sizeof(float)) && !memcmp(g1, g2, ng * sizeof(float)) &&
              nonzero > ng / 2,
          "mobilenet_v2_tf training step, ReLU6 fused into its convolutions: output and all %zu gradients (%zu "
          "non-zero) bitwise equal to separate ReLU6 passes", ng, nonzero);
    check(top1 <= top2, "fused, the pool's high-water mark is no higher: %.3f MB, %.3f MB unfused", top1 * 4e-6,
          top2 * 4e-6);
    free(o1), free(g1), free(o2), free(g2);
}

static void test_torchvision_proof(void) { prove_torchvision("mobilenet_v2", 10); }

static const test_case cases[] = {
    {"torchvision_structure", test_torchvision_structure},
    {"torchvision_proof", test_torchvision_proof},
    {"tf_structure", test_tf_structure},
    {"tf_logits", test_tf_logits},
    {"tf_fused_training", test_tf_fused_training},
};
TEST_MAIN(cases)
