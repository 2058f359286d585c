/* test_resnet.c - torchvision ResNet-18/34/50 from the zoo: structure (names, shapes, parameter
 * counts, layer groups), init, load errors, and the whole-network proof against PyTorch (eval
 * logits, train logits, loss, every gradient, running statistics; see model_proof.h). */
#include "model_proof.h"
#include <unistd.h>

static void stats(net *m, const char *name, double *mean, double *sd, double *lo, double *hi) {
    int i = net_find_param(m, name);
    *mean = *sd = *lo = *hi = NAN;
    if (i < 0) return;
    const float *v = net_param(m, i);
    size_t n = m->params[i].numel;
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        s += v[j];
        s2 += (double)v[j] * v[j];
        *lo = fmin(*lo, v[j]);
        *hi = fmax(*hi, v[j]);
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
}

/* resnet18/34/50: parameter counts, the body's last map, the layer groups */
static void test_structure(void) {
    static const struct { const char *arch; size_t params; } tv[] = {
        {"resnet18", 11689512}, {"resnet34", 21797672}, {"resnet50", 25557032}};
    for (int a = 0; a < 3; a++) {
        net *m = model_build(tv[a].arch, 1000, NULL);
        if (!check(m != NULL, "%s builds at 224x224: %s", tv[a].arch, m ? "" : sn_last_error())) continue;
        const node *o = &m->nodes[net_output(m)];
        check(model_num_params(m) == tv[a].params && o->c == 1000 && o->h == 1 && o->w == 1,
              "%s: %zu parameters (torchvision: %zu), output %dx%dx%d", tv[a].arch, model_num_params(m),
              tv[a].params, o->h, o->w, o->c);
        /* the feature map before avgpool is 7x7 at 224 */
        const node *g = &m->nodes[o->in0];
        const node *f = &m->nodes[g->in0];
        check(g->op == OP_GAP && f->h == 7 && f->w == 7 && f->c == model_body_features(tv[a].arch),
              "%s: body ends in a 7x7x%d map, then avgpool + fc", tv[a].arch, f->c);
        int g0 = net_find_param(m, "layer2.1.conv1.weight"), g1 = net_find_param(m, "layer3.0.conv1.weight"),
            g1b = net_find_param(m, "layer4.1.bn2.bias"), g2 = net_find_param(m, "fc.weight"),
            gs = net_find_param(m, "conv1.weight");
        check(gs >= 0 && g0 >= 0 && g1 >= 0 && g1b >= 0 && g2 >= 0 && m->params[gs].group == 0 &&
                  m->params[g0].group == 0 && m->params[g1].group == 1 && m->params[g1b].group == 1 &&
                  m->params[g2].group == 2,
              "%s: layer groups as fastai's _resnet_split (stem..layer2 | layer3, layer4 | head)", tv[a].arch);
        net_free(m);
    }
}

/* resnet50 is torchvision's v1.5 Bottleneck */
static void test_resnet50_v1_5(void) {
    net *m = model_build("resnet50", 1000, NULL);
    if (!check(m != NULL, "resnet50 builds at 224x224: %s", m ? "" : sn_last_error())) return;
    /* v1.5: stride 2 on the 3x3 conv2 of the first Bottleneck of layers 2-4 */
    int c1 = net_find_param(m, "layer2.0.conv1.weight"), c2 = net_find_param(m, "layer2.0.conv2.weight"),
        ds = net_find_param(m, "layer1.0.downsample.0.weight");
    check(c1 >= 0 && c2 >= 0 && ds >= 0 && m->nodes[m->params[c1].node].conv.sh == 1 &&
              m->nodes[m->params[c2].node].conv.sh == 2 &&
              m->nodes[m->params[ds].node].conv.sh == 1,
          "resnet50: Bottleneck v1.5 (stride on conv2), layer1.0 has a stride-1 downsample to 256");
    net_free(m);
}

/* torchvision's init on resnet34, and model_summary's lines */
static void test_resnet34_init(void) {
    net *m = model_build("resnet34", 1000, NULL);
    if (!check(m != NULL, "resnet34 builds at 224x224: %s", m ? "" : sn_last_error())) return;
    /* torchvision init: kaiming normal fan_out for convs, BN 1/0, fc uniform +-1/sqrt(512) */
    double mean, sd, lo, hi;
    stats(m, "conv1.weight", &mean, &sd, &lo, &hi);
    double want = sqrt(2.0 / (64 * 7 * 7));
    check(fabs(sd / want - 1) < 0.05 && fabs(mean) < 0.05 * want,
          "init conv1.weight: std %.4g, kaiming fan_out wants %.4g; mean %.2g", sd, want, mean);
    stats(m, "layer3.2.conv2.weight", &mean, &sd, &lo, &hi);
    want = sqrt(2.0 / (256 * 3 * 3));
    check(fabs(sd / want - 1) < 0.02, "init layer3.2.conv2.weight: std %.4g, wants %.4g", sd, want);
    stats(m, "fc.weight", &mean, &sd, &lo, &hi);
    double b = 1 / sqrt(512.0);
    check(lo >= -b && hi <= b && fabs(sd / (b / sqrt(3.0)) - 1) < 0.05,
          "init fc.weight: in [%.4g, %.4g] within +-%.4g, std %.4g (uniform wants %.4g)", lo, hi, b, sd,
          b / sqrt(3.0));
    stats(m, "fc.bias", &mean, &sd, &lo, &hi);
    check(lo >= -b && hi <= b && sd > 0.3 * b, "init fc.bias: uniform +-1/sqrt(512) (range [%.3g, %.3g])",
          lo, hi);
    double w0, w1, b0, b1, v0, v1;
    stats(m, "layer2.0.bn1.weight", &mean, &sd, &w0, &w1);
    stats(m, "layer2.0.bn1.bias", &mean, &sd, &b0, &b1);
    stats(m, "layer2.0.bn1.running_var", &mean, &sd, &v0, &v1);
    check(w0 == 1 && w1 == 1 && b0 == 0 && b1 == 0 && v0 == 1 && v1 == 1, "init BN: weight 1, bias 0, var 1");
    /* summary: one line per node + header + totals */
    FILE *f = tmpfile();
    if (f) {
        model_summary(m, f);
        rewind(f);
        int lines = 0, ch;
        while ((ch = fgetc(f)) != EOF) lines += ch == '\n';
        fclose(f);
        check(lines == m->n_nodes + 3, "model_summary: %d lines for %d nodes", lines, m->n_nodes);
    }
    net_free(m);
}

/* unknown architectures and heads, and load errors naming the tensor */
static void test_errors(void) {
    net *m = model_build("resnet99", 10, NULL);
    const char *e = sn_last_error();
    check(m == NULL && strstr(e, "resnet99") && strstr(e, "resnet18") && strstr(e, "mobilenet_v2_tf"),
          "unknown architecture: error names it and lists the known ones (\"%s\")", e);
    check(model_body_features("vgg16") == -1 && model_body_features("resnet50") == 2048,
          "model_body_features: 2048 for resnet50, -1 for an unknown arch");
    model_opts o = model_default_opts();
    o.head = (model_head)7;
    m = model_build("resnet18", 10, &o);
    check(m == NULL && strstr(sn_last_error(), "head"), "an unknown head kind is refused (\"%s\")", sn_last_error());
    o = model_default_opts();
    o.lin_ftrs = 0;
    o.head = MODEL_HEAD_FASTAI;
    m = model_build("resnet18", 10, &o);
    check(m == NULL && strstr(sn_last_error(), "resnet18"), "fastai head with 0 hidden features is refused (\"%s\")",
          sn_last_error());

    /* load errors name the tensor: save resnet18 (10 classes), load into 5 classes (fc shape) and
     * into a resnet34 (missing layer1.2.*); save a body and load into a full model (missing fc) */
    o = model_default_opts();
    o.in_h = o.in_w = 64;
    char path[64];
    snprintf(path, sizeof path, "/tmp/stylenet_test_resnet_%d.safetensors", (int)getpid());
    net *a = model_build("resnet18", 10, &o), *b = model_build("resnet18", 5, &o), *c = model_build("resnet34", 10, &o);
    o.head = MODEL_HEAD_NONE;
    net *body = model_build("resnet18", 10, &o);
    if (check(a && b && c && body, "build resnet18/34 variants at 64x64") &&
        check(net_save_safetensors(a, path, NULL, 0) == 0, "save resnet18 state to %s", path)) {
        int r = net_load_safetensors(b, path, NULL);
        e = sn_last_error();
        check(r < 0 && strstr(e, "fc.weight"), "wrong-shaped tensor: load fails naming it (\"%s\")", r < 0 ? e : "");
        r = net_load_safetensors(c, path, NULL);
        e = sn_last_error();
        check(r < 0 && strstr(e, "layer1.2."), "missing tensor: load fails naming it (\"%s\")", r < 0 ? e : "");
        check(net_save_safetensors(body, path, NULL, 0) == 0, "save a resnet18 body");
        r = net_load_safetensors(a, path, NULL);
        e = sn_last_error();
        check(r < 0 && strstr(e, "fc."), "body state into a full model: fails naming fc (\"%s\")", r < 0 ? e : "");
        r = net_load_safetensors(body, path, NULL);
        check(r == body->n_params, "body state round trip: %d of %d params", r, body->n_params);
        check(net_save_safetensors(c, path, NULL, 0) == 0, "save a resnet34");
        r = net_load_safetensors(a, path, NULL);
        e = sn_last_error();
        check(r < 0 && strstr(e, "layer1.2."), "resnet34 state into resnet18: extra tensors named (\"%s\")",
              r < 0 ? e : "");
    }
    unlink(path);
    net_free(a);
    net_free(b);
    net_free(c);
    net_free(body);
}

static void test_resnet18_proof(void) { prove_torchvision("resnet18", 10); }
static void test_resnet34_proof(void) { prove_torchvision("resnet34", 10); }
static void test_resnet50_proof(void) { prove_torchvision("resnet50", 10); }

static const test_case cases[] = {
    {"errors", test_errors},
    {"structure", test_structure},
    {"resnet50_v1_5", test_resnet50_v1_5},
    {"resnet34_init", test_resnet34_init},
    {"resnet18_proof", test_resnet18_proof},
    {"resnet34_proof", test_resnet34_proof},
    {"resnet50_proof", test_resnet50_proof},
};
TEST_MAIN(cases)
