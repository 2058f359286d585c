/* test_head.c - fastai v1's transfer head (create_head) from the zoo: names (nn.Sequential indices,
 * with fastai's rule that Dropout(0) is left out), groups, init, and the whole-network proof of
 * resnet34 + head against PyTorch (model_proof.h). */
#include "model_proof.h"

static bool has(const net *m, const char *name) { return net_find_param(m, name) >= 0; }

/* ps=0.5 (the default): names, groups, parameter count, init, dropouts */
static void test_names(void) {
    model_opts o = model_default_opts();
    o.head = MODEL_HEAD_FASTAI;
    net *m = model_build("resnet34", 37, &o);
    if (!check(m != NULL, "resnet34 + fastai head builds: %s", m ? "" : sn_last_error())) return;
    static const char *want[] = {"head.2.weight", "head.2.bias", "head.2.running_mean", "head.2.running_var",
                                 "head.4.weight", "head.4.bias", "head.6.weight", "head.6.bias",
                                 "head.6.running_mean", "head.6.running_var", "head.8.weight", "head.8.bias"};
    int found = 0, in_group2 = 0, head_params = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) found += has(m, want[i]);
    for (int i = 0; i < m->n_params; i++)
        if (!strncmp(m->params[i].name, "head.", 5)) head_params++, in_group2 += m->params[i].group == 2;
    check(found == 12 && head_params == 12 && in_group2 == 12,
          "ps=0.5: head params are head.{2,6} BN, head.{4,8} Linear (fastai create_head indices), all in group 2");
    check(!has(m, "fc.weight") && model_num_params(m) == 21284672 + 2048 + 1024 * 512 + 512 + 1024 + 512 * 37 + 37,
          "resnet34 body without fc (21284672) + head parameters: %zu", model_num_params(m));
    int w4 = net_find_param(m, "head.4.weight"), w8 = net_find_param(m, "head.8.weight");
    if (w4 >= 0 && w8 >= 0) {
        const param *p = &m->params[w4];
        check(p->shape[0] == 512 && p->shape[1] == 1024 && m->params[w8].shape[0] == 37 &&
                  m->params[w8].shape[1] == 512,
              "head.4 is Linear(1024, 512), head.8 Linear(512, 37)");
        const float *w = net_param(m, w4);
        double s2 = 0;
        for (size_t j = 0; j < p->numel; j++) s2 += (double)w[j] * w[j];
        double want_sd = sqrt(2.0 / 1024);
        const float *b = net_param(m, net_find_param(m, "head.4.bias"));
        const float *g = net_param(m, net_find_param(m, "head.2.weight"));
        const float *be = net_param(m, net_find_param(m, "head.2.bias"));
        check(fabs(sqrt(s2 / p->numel) / want_sd - 1) < 0.02 && b[0] == 0 && b[511] == 0 && g[0] == 1 && be[0] == 0,
              "init: linear kaiming_normal fan_in (std %.5f, wants %.5f), bias 0; BatchNorm1d 1/0 (fastai skips BNs)",
              sqrt(s2 / p->numel), want_sd);
    }
    float ps[2] = {-1, -1};
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_DROPOUT && k < 2) ps[k++] = m->nodes[i].p;
    const node *cp = NULL;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_CONCATPOOL) cp = &m->nodes[i];
    check(k == 2 && ps[0] == 0.25f && ps[1] == 0.5f && cp && cp->c == 1024,
          "dropouts p/2 = %.2f then p = %.2f; concat pool gives 2 x 512 features", ps[0], ps[1]);
    net_free(m);
}

/* ps=0: no Dropout modules, and the Sequential indices shift */
static void test_ps0(void) {
    model_opts o = model_default_opts();
    o.head = MODEL_HEAD_FASTAI;
    o.ps = 0;
    net *m = model_build("resnet34", 37, &o);
    int drop = 0;
    for (int i = 0; m && i < m->n_nodes; i++) drop += m->nodes[i].op == OP_DROPOUT;
    check(m && drop == 0 && has(m, "head.2.weight") && has(m, "head.3.weight") && has(m, "head.5.running_var") &&
              has(m, "head.6.bias") && !has(m, "head.4.weight") && !has(m, "head.8.weight"),
          "ps=0: no Dropout modules, indices shift as fastai's bn_drop_lin: head.2 BN, head.3 Linear, head.5 BN, "
          "head.6 Linear");
    net_free(m);
}

/* the head on every body of the zoo, and on any body node */
static void test_bodies(void) {
    static const char *bodies[] = {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v2_tf"};
    model_opts o = model_default_opts();
    o.head = MODEL_HEAD_FASTAI;
    o.in_h = o.in_w = 96;
    for (int a = 0; a < 4; a++) {
        net *m = model_build(bodies[a], 3, &o);
        int bn = net_find_param(m ? m : (net *)NULL, "head.2.weight");
        int nf = model_body_features(bodies[a]);
        check(m && bn >= 0 && m->params[bn].shape[0] == 2 * nf && net_out_size(m) == 3,
              "%s + fastai head: BatchNorm1d(%d), 3 outputs: %s", bodies[a], 2 * nf, m ? "" : sn_last_error());
        net_free(m);
    }
    o.head = MODEL_HEAD_NONE;
    net *m = model_build("mobilenet_v2", 3, &o);
    check(m && m->nodes[net_output(m)].c == 1280 && m->nodes[net_output(m)].h == 3,
          "MODEL_HEAD_NONE: mobilenet_v2 body output 3x3x1280 at 96x96");
    /* the head on any body */
    int x = m ? model_fastai_head(m, net_output(m), 7, 0.5f, 64) : -1;
    check(x > 0 && m->nodes[x].c == 7 && has(m, "head.4.weight") && m->params[net_find_param(m, "head.4.weight")].shape[0] == 64,
          "model_fastai_head on a body node: lin_ftrs 64, 7 classes");
    x = m ? model_fastai_head(m, net_output(m), 7, 1.5f, 64) : -1;
    check(x < 0 && strstr(sn_last_error(), "ps"), "ps = 1.5 is refused: %s", sn_last_error());
    net_free(m);
}

/* resnet34 + fastai head against PyTorch: eval (ps=0.5), then a train step (ps=0, the same
 * parameters) */
static void test_proof(void) {
    const char *tag = "resnet34_fastai", *state = "models_resnet34_fastai_state.safetensors";
    proof_io io;
    if (!proof_open(&io, tag, 10)) return;
    const st_tensor *tx = st_find(io.ref, "x");
    model_opts o = model_default_opts();
    o.head = MODEL_HEAD_FASTAI;
    o.in_h = (int)tx->shape[1];
    o.in_w = (int)tx->shape[2];
    net *m5 = model_build("resnet34", 10, &o);
    o.ps = 0;
    net *m0 = model_build("resnet34", 10, &o);
    if (check(m5 && m0, "build resnet34 + fastai head, ps 0.5 and 0%s", m5 && m0 ? "" : sn_last_error())) {
        st_file *sf = open_fixture(state);
        if (sf) {
            check_names(m5, sf, "resnet34 + fastai head (ps=0.5)");
            st_close(sf);
        }
        if (proof_eval(m5, &io, "resnet34+fastai head", state)) {
            /* the same parameters in the same order: the ps=0 net differs only by the dropout nodes */
            bool same = m0->n_params == m5->n_params && m0->n_floats == m5->n_floats;
            for (int i = 0; same && i < m0->n_params; i++)
                same = m0->params[i].off == m5->params[i].off && m0->params[i].numel == m5->params[i].numel;
            if (check(same, "ps=0 head has the ps=0.5 head's parameter layout")) {
                memcpy(m0->data, m5->data, m5->n_floats * sizeof(float));
                proof_train(m0, &io, "resnet34+fastai head (train, ps=0)");
            }
        }
    }
    net_free(m5);
    net_free(m0);
    proof_close(&io);
}

static const test_case cases[] = {
    {"names", test_names},
    {"ps0", test_ps0},
    {"bodies", test_bodies},
    {"proof", test_proof},
};
TEST_MAIN(cases)
