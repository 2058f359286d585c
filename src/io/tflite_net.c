/* tflite_net.c - TFLite convolution weights -> net (see tflite_net.h). */
#include "io/tflite_net.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "io/tflite.h"

int tflite_is_file(const char *path) {
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(b + 4, "TFL3", 4);
}

/* the node reading conv node i (its activation), or -1 */
static int consumer(const net *m, int i) {
    for (int j = i + 1; j < m->n_nodes; j++)
        if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) return j;
    return -1;
}

typedef struct {
    int node;
    const tfl_op *op;
    const tfl_tensor *w, *b;
    float *wf, *bf; /* dequantised staging copies */
} pair;

static int check_pair(const net *m, const tfl_model *t, int op_index, const pair *p) {
    const char *file = tfl_filename(t);
    const node *d = &m->nodes[p->node];
    const conv_desc *c = &d->conv;
    const param *pw = &m->params[d->p_w];
    const char *kind = tfl_op_name(p->op->builtin);
    bool dw = p->op->builtin == TFL_OP_DEPTHWISE_CONV_2D;
    bool node_dw = c->groups > 1 && c->groups == c->cin;
    if (dw != node_dw)
        return sn_error("%s: operator %d (%s) is %s but node '%s' is %s: not the same architecture", file, op_index,
                        kind, dw ? "depthwise" : "dense", d->name, node_dw ? "depthwise" : "dense");
    if (!dw && c->groups != 1)
        return sn_error("%s: node '%s' is a grouped convolution, which TFLite's CONV_2D cannot hold", file, d->name);
    const tfl_tensor *w = p->w;
    int eo, ekh, ekw, ei; /* expected TFLite weight shape */
    if (dw) { eo = 1; ekh = c->kh; ekw = c->kw; ei = c->cout; }
    else { eo = c->cout; ekh = c->kh; ekw = c->kw; ei = c->cin; }
    if (w->ndim != 4 || w->shape[0] != eo || w->shape[1] != ekh || w->shape[2] != ekw || w->shape[3] != ei)
        return sn_error("%s: operator %d (%s) weight '%s' has shape [%d,%d,%d,%d], node '%s' needs [%d,%d,%d,%d]: "
                        "not the same architecture", file, op_index, kind, w->name, w->ndim > 0 ? w->shape[0] : 0,
                        w->ndim > 1 ? w->shape[1] : 0, w->ndim > 2 ? w->shape[2] : 0, w->ndim > 3 ? w->shape[3] : 0,
                        d->name, eo, ekh, ekw, ei);
    if (!w->data) return sn_error("%s: operator %d (%s) weight '%s' has no data", file, op_index, kind, w->name);
    if (p->op->stride_h != c->sh || p->op->stride_w != c->sw)
        return sn_error("%s: operator %d (%s) has stride %dx%d, node '%s' stride %dx%d: not the same architecture",
                        file, op_index, kind, p->op->stride_h, p->op->stride_w, d->name, c->sh, c->sw);
    if (p->op->dilation_h != 1 || p->op->dilation_w != 1)
        return sn_error("%s: operator %d (%s) is dilated (%dx%d), which stylenet does not support", file, op_index,
                        kind, p->op->dilation_h, p->op->dilation_w);
    if (p->op->padding == TFL_PAD_SAME) {
        int pt, pb, pl, pr;
        conv_same_padding(c->h, c->kh, c->sh, &pt, &pb);
        conv_same_padding(c->w, c->kw, c->sw, &pl, &pr);
        if (pt != c->pt || pb != c->pb || pl != c->pl || pr != c->pr)
            return sn_error("%s: operator %d (%s) uses SAME padding but node '%s' pads %d,%d,%d,%d", file, op_index,
                            kind, d->name, c->pt, c->pb, c->pl, c->pr);
    } else if (c->pt || c->pb || c->pl || c->pr) {
        return sn_error("%s: operator %d (%s) uses VALID padding but node '%s' pads", file, op_index, kind, d->name);
    }
    int next = consumer(m, p->node);
    op_kind want = p->op->activation == TFL_ACT_RELU6 ? OP_RELU6 : p->op->activation == TFL_ACT_RELU ? OP_RELU : OP_INPUT;
    if (p->op->activation != TFL_ACT_NONE && want == OP_INPUT)
        return sn_error("%s: operator %d (%s) has fused activation %d, which stylenet does not support", file,
                        op_index, kind, p->op->activation);
    bool next_is_act = next >= 0 && (m->nodes[next].op == OP_RELU6 || m->nodes[next].op == OP_RELU);
    if ((want == OP_INPUT && next_is_act) || (want != OP_INPUT && (!next_is_act || m->nodes[next].op != want)))
        return sn_error("%s: operator %d (%s) activation (%s) differs from what follows node '%s'", file, op_index,
                        kind, want == OP_RELU6 ? "RELU6" : want == OP_RELU ? "RELU" : "none", d->name);
    if (p->b) {
        if (d->p_b < 0)
            return sn_error("%s: operator %d (%s) has a bias but node '%s' has none", file, op_index, kind, d->name);
        if (tfl_numel(p->b) != c->cout || !p->b->data)
            return sn_error("%s: operator %d (%s) bias '%s' has %lld values, node '%s' needs %d", file, op_index, kind,
                            p->b->name, (long long)tfl_numel(p->b), d->name, c->cout);
    } else if (d->p_b >= 0) {
        return sn_error("%s: operator %d (%s) has no bias but node '%s' has one", file, op_index, kind, d->name);
    }
    (void)pw;
    return 0;
}

static int load(net *m, const char *path, bool body_only);

int net_load_tflite(net *m, const char *path) { return load(m, path, false); }

int net_load_tflite_body(net *m, const char *path) { return load(m, path, true); }

static int load(net *m, const char *path, bool body_only) {
    tfl_model *t = tfl_open(path);
    if (!t) return -1;
    int n_ops = tfl_num_ops(t), n_conv_nodes = 0, n_conv_ops = 0;
    for (int i = 0; i < m->n_nodes; i++) n_conv_nodes += m->nodes[i].op == OP_CONV;
    for (int i = 0; i < n_ops; i++) {
        int b = tfl_op_at(t, i)->builtin;
        n_conv_ops += b == TFL_OP_CONV_2D || b == TFL_OP_DEPTHWISE_CONV_2D;
    }
    pair *pairs = calloc((size_t)(n_conv_ops ? n_conv_ops : 1), sizeof(pair));
    int r = -1;
    if (!pairs) {
        sn_error("out of memory");
        goto done;
    }
    int skipped = 0;
    if (body_only && n_conv_ops > n_conv_nodes) {
        skipped = n_conv_ops - n_conv_nodes;
        n_conv_ops = n_conv_nodes;
    }
    if (n_conv_ops != n_conv_nodes) {
        sn_error("%s: the file has %d convolutions, architecture '%s' has %d: not the same architecture", path,
                 n_conv_ops, m->arch[0] ? m->arch : "(net)", n_conv_nodes);
        goto done;
    }
    /* pair them up and check everything before writing anything */
    int k = 0, node_i = 0;
    for (int i = 0; i < n_ops && k < n_conv_ops; i++) {
        const tfl_op *op = tfl_op_at(t, i);
        if (op->builtin != TFL_OP_CONV_2D && op->builtin != TFL_OP_DEPTHWISE_CONV_2D) continue;
        while (m->nodes[node_i].op != OP_CONV) node_i++;
        pair *p = &pairs[k++];
        p->node = node_i++;
        p->op = op;
        if (op->n_inputs < 2 || op->inputs[1] < 0) {
            sn_error("%s: operator %d (%s) has no weight input", path, i, tfl_op_name(op->builtin));
            goto done;
        }
        p->w = tfl_tensor_at(t, op->inputs[1]);
        p->b = op->n_inputs >= 3 && op->inputs[2] >= 0 ? tfl_tensor_at(t, op->inputs[2]) : NULL;
        if (check_pair(m, t, i, p) < 0) goto done;
    }
    /* dequantise everything into staging buffers, then write the net (all or nothing) */
    for (k = 0; k < n_conv_ops; k++) {
        pair *p = &pairs[k];
        const node *d = &m->nodes[p->node];
        size_t n = (size_t)tfl_numel(p->w);
        p->wf = malloc(n * sizeof(float));
        p->bf = p->b ? malloc((size_t)d->conv.cout * sizeof(float)) : NULL;
        if (!p->wf || (p->b && !p->bf)) {
            sn_error("out of memory");
            goto done;
        }
        if (tfl_dequantize_tensor(t, p->w, p->wf, n) < 0) goto done;
        if (p->b && tfl_dequantize_tensor(t, p->b, p->bf, (size_t)d->conv.cout) < 0) goto done;
    }
    for (k = 0; k < n_conv_ops; k++) {
        pair *p = &pairs[k];
        node *d = &m->nodes[p->node];
        float *w = net_param(m, d->p_w);
        if (p->op->builtin == TFL_OP_DEPTHWISE_CONV_2D) { /* [1,KH,KW,C] -> [C,KH,KW,1] */
            int hw = d->conv.kh * d->conv.kw, c = d->conv.cout;
            for (int s = 0; s < hw; s++)
                for (int o = 0; o < c; o++) w[(size_t)o * hw + s] = p->wf[(size_t)s * c + o];
        } else {
            memcpy(w, p->wf, (size_t)tfl_numel(p->w) * sizeof(float));
        }
        if (p->b) memcpy(net_param(m, d->p_b), p->bf, (size_t)d->conv.cout * sizeof(float));
    }
    r = skipped;
done:
    if (r < 0 && !strstr(sn_last_error(), path)) sn_error_prefix("%s", path);
    for (int i = 0; pairs && i < n_conv_ops; i++) {
        free(pairs[i].wf);
        free(pairs[i].bf);
    }
    free(pairs);
    tfl_close(t);
    return r;
}
