/* zoo.c - model_build() and friends, see zoo.h. */
#include "models/zoo.h"
#include <string.h>
#include "core/error.h"
#include "models/zoo_internal.h"

typedef enum { A_RESNET18, A_RESNET34, A_RESNET50, A_MNV2, A_MNV2_TF, A_EFFL0, A_EFFL1, A_EFFL2, A_COUNT } arch_id;

static const struct {
    const char *name;
    int features, default_classes;
    float dropout; /* the default classifier's dropout when model_opts.dropout < 0 (0: it has none) */
} archs[A_COUNT] = {
    [A_RESNET18] = {"resnet18", 512, 1000, 0},
    [A_RESNET34] = {"resnet34", 512, 1000, 0},
    [A_RESNET50] = {"resnet50", 2048, 1000, 0},
    [A_MNV2] = {"mobilenet_v2", 1280, 1000, 0.2f},
    [A_MNV2_TF] = {"mobilenet_v2_tf", 1280, 1001, 0},
    [A_EFFL0] = {"efficientnet_lite0", 1280, 1000, 0.2f},
    [A_EFFL1] = {"efficientnet_lite1", 1280, 1000, 0.2f},
    [A_EFFL2] = {"efficientnet_lite2", 1280, 1000, 0.3f},
};

const char *model_known_archs(void) {
    return "resnet18, resnet34, resnet50, mobilenet_v2, mobilenet_v2_tf, efficientnet_lite0, efficientnet_lite1, "
           "efficientnet_lite2";
}

static int find_arch(const char *arch) {
    for (int i = 0; i < A_COUNT; i++)
        if (arch && !strcmp(arch, archs[i].name)) return i;
    return sn_error("unknown architecture '%s' (known: %s)", arch ? arch : "(null)", model_known_archs());
}

model_opts model_default_opts(void) {
    return (model_opts){.in_h = 224, .in_w = 224, .head = MODEL_HEAD_DEFAULT, .ps = 0.5f, .lin_ftrs = 512,
                        .dropout = -1, .drop_connect = -1, .seed = 42};
}

int model_body_features(const char *arch) {
    int a = find_arch(arch);
    return a < 0 ? -1 : archs[a].features;
}

net *model_build(const char *arch, int num_classes, const model_opts *opts) {
    const model_opts o = opts ? *opts : model_default_opts();
    int a = find_arch(arch);
    if (a < 0) return NULL;
    if (num_classes <= 0) num_classes = archs[a].default_classes;
    if (o.head != MODEL_HEAD_DEFAULT && o.head != MODEL_HEAD_FASTAI && o.head != MODEL_HEAD_NONE) {
        sn_error("%s: unknown head kind %d", arch, (int)o.head);
        return NULL;
    }
    const int h = o.in_h > 0 ? o.in_h : 224, w = o.in_w > 0 ? o.in_w : 224;
    const float dropout = o.dropout < 0 ? archs[a].dropout : o.dropout;
    const float drop_connect = o.drop_connect < 0 ? 0.2f : o.drop_connect;
    net *m = net_create(h, w, 3);
    if (!m) return NULL;
    snprintf(m->arch, sizeof m->arch, "%s", archs[a].name);
    int x = 0;
    switch ((arch_id)a) {
    case A_RESNET18: x = zoo_resnet_body(m, x, 18); break;
    case A_RESNET34: x = zoo_resnet_body(m, x, 34); break;
    case A_RESNET50: x = zoo_resnet_body(m, x, 50); break;
    case A_MNV2: x = zoo_mobilenet_v2_body(m, x); break;
    case A_MNV2_TF: x = zoo_mobilenet_v2_tf_body(m, x); break;
    case A_EFFL0: case A_EFFL1: case A_EFFL2:
        x = zoo_efficientnet_lite_body(m, x, a - A_EFFL0, drop_connect);
        break;
    case A_COUNT: x = -1; break;
    }
    if (x >= 0 && o.head == MODEL_HEAD_FASTAI) {
        x = model_fastai_head(m, x, num_classes, o.ps, o.lin_ftrs);
    } else if (x >= 0 && o.head == MODEL_HEAD_DEFAULT) {
        switch ((arch_id)a) {
        case A_RESNET18: case A_RESNET34: case A_RESNET50: x = zoo_resnet_fc(m, x, num_classes); break;
        case A_MNV2: x = zoo_mobilenet_v2_classifier(m, x, num_classes, dropout); break;
        case A_MNV2_TF: x = zoo_mobilenet_v2_tf_logits(m, x, num_classes); break;
        case A_EFFL0: case A_EFFL1: case A_EFFL2:
            x = zoo_efficientnet_lite_classifier(m, x, num_classes, dropout);
            break;
        case A_COUNT: x = -1; break;
        }
    }
    if (x < 0) {
        sn_error_prefix("%s (%dx%d input)", archs[a].name, h, w);
        net_free(m);
        return NULL;
    }
    m->out = x;
    net_init_params(m, o.seed);
    return m;
}

size_t model_num_params(const net *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].buffer) n += m->params[i].numel;
    return n;
}

static const char *op_name(op_kind k) {
    switch (k) {
    case OP_INPUT: return "input";
    case OP_CONV: return "conv";
    case OP_BN: return "batchnorm";
    case OP_RELU: return "relu";
    case OP_RELU6: return "relu6";
    case OP_ADD: return "add";
    case OP_MAXPOOL: return "maxpool";
    case OP_AVGPOOL: return "avgpool";
    case OP_GAP: return "global_avgpool";
    case OP_CONCATPOOL: return "concat_pool";
    case OP_FLATTEN: return "flatten";
    case OP_LINEAR: return "linear";
    case OP_DROPOUT: return "dropout";
    case OP_DROPPATH: return "droppath";
    }
    return "?";
}

void model_summary(const net *m, FILE *f) {
    fprintf(f, "%s: %d nodes\n", m->arch[0] ? m->arch : "net", m->n_nodes);
    fprintf(f, "%5s  %-15s %-44s %-16s %10s %5s  %s\n", "node", "op", "name", "output", "params", "group", "detail");
    for (int i = 0; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        size_t np = 0;
        for (int p = 0; p < m->n_params; p++)
            if (m->params[p].node == i && !m->params[p].buffer) np += m->params[p].numel;
        char shape[32], detail[96] = "";
        snprintf(shape, sizeof shape, "%dx%dx%d", d->h, d->w, d->c);
        if (d->op == OP_CONV) {
            const conv_desc *c = &d->conv;
            snprintf(detail, sizeof detail, "k%dx%d s%d pad t%d b%d l%d r%d%s%s", c->kh, c->kw, c->sh, c->pt, c->pb,
                     c->pl, c->pr, c->groups == 1 ? "" : (c->groups == c->cin ? " depthwise" : " grouped"),
                     d->p_b >= 0 ? " +bias" : "");
        } else if (d->op == OP_MAXPOOL || d->op == OP_AVGPOOL) {
            snprintf(detail, sizeof detail, "k%d s%d pad %d", d->pool.kh, d->pool.sh, d->pool.pt);
        } else if (d->op == OP_ADD) {
            snprintf(detail, sizeof detail, "nodes %d + %d", d->in0, d->in1);
        } else if (d->op == OP_DROPOUT || d->op == OP_DROPPATH) {
            snprintf(detail, sizeof detail, "p %g", d->p);
        }
        fprintf(f, "%5d  %-15s %-44s %-16s %10zu %5d  %s\n", i, op_name(d->op), d->name[0] ? d->name : "-", shape, np,
                d->group, detail);
    }
    size_t buffers = 0;
    for (int p = 0; p < m->n_params; p++)
        if (m->params[p].buffer) buffers += m->params[p].numel;
    fprintf(f, "parameters %zu (trainable now %zu), buffers %zu floats, %.3f GMACs per image\n", model_num_params(m),
            net_num_trainable(m), buffers, net_macs(m) / 1e9);
}
