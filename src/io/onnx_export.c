/* onnx_export.c - a network's inference graph as ONNX (see onnx_export.h).
 *
 * The graph is assembled as protobuf-c messages (ONNX's schema, generated into build/gen), every
 * allocation in one list freed at the end, then packed straight into the file. */
#include "io/onnx_export.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/file.h"
#include "onnx.pb-c.h"

enum { OX_OPSET = 13, OX_IR_VERSION = 7, OX_MAX_ATTRS = 6 };

typedef struct ox_blk {
    struct ox_blk *next;
    max_align_t data[];
} ox_blk;

/* the graph being built */
typedef struct {
    ox_blk *mem;                  /* every allocation */
    Onnx__NodeProto **nodes;      /* [cap_nodes] */
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;    /* [cap_inits] */
    size_t n_inits, cap_inits;
    const char *clip_lo, *clip_hi; /* ReLU6's bounds, made once */
    bool oom;
    const char *err;              /* a node ONNX cannot express here, or NULL */
} ox;

/* n zeroed bytes owned by b (freed by ox_free); NULL and b->oom if out of memory */
static void *ox_new(ox *b, size_t n) {
    ox_blk *k = calloc(1, sizeof(ox_blk) + n);
    if (!k) {
        b->oom = true;
        return NULL;
    }
    k->next = b->mem;
    b->mem = k;
    return k->data;
}

static void ox_free(ox *b) {
    for (ox_blk *k = b->mem, *nx; k; k = nx) {
        nx = k->next;
        free(k);
    }
    free(b->nodes);
    free(b->inits);
}

static char *ox_str(ox *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ox_str(ox *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? ox_new(b, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* a node op(inputs...) -> out, named name; n_in inputs follow */
static Onnx__NodeProto *ox_node(ox *b, const char *op, const char *name, const char *out, int n_in, ...) {
    Onnx__NodeProto *nd = ox_new(b, sizeof *nd);
    char **in = ox_new(b, (size_t)(n_in > 0 ? n_in : 1) * sizeof *in);
    char **outs = ox_new(b, sizeof *outs);
    Onnx__AttributeProto **at = ox_new(b, OX_MAX_ATTRS * sizeof *at);
    if (!nd || !in || !outs || !at || !out || !name || b->n_nodes == b->cap_nodes) {
        b->oom = true;
        return NULL;
    }
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++) {
        in[i] = va_arg(ap, char *);
        if (!in[i]) b->oom = true;
    }
    va_end(ap);
    outs[0] = (char *)out;
    nd->n_input = (size_t)n_in;
    nd->input = in;
    nd->n_output = 1;
    nd->output = outs;
    nd->name = (char *)name;
    nd->op_type = (char *)op;
    nd->attribute = at;
    b->nodes[b->n_nodes++] = nd;
    return nd;
}

/* a new attribute of nd, named name, of type t */
static Onnx__AttributeProto *ox_attr(ox *b, Onnx__NodeProto *nd, const char *name, Onnx__AttributeProto__AttributeType t) {
    if (!nd || nd->n_attribute == OX_MAX_ATTRS) {
        b->oom = true;
        return NULL;
    }
    Onnx__AttributeProto *a = ox_new(b, sizeof *a);
    if (!a) return NULL;
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = t;
    nd->attribute[nd->n_attribute++] = a;
    return a;
}

static void ox_attr_int(ox *b, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ox_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

static void ox_attr_float(ox *b, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = ox_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

static void ox_attr_ints(ox *b, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = ox_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = ox_new(b, (size_t)n * sizeof *c);
    if (!a || !c) return;
    memcpy(c, v, (size_t)n * sizeof *c);
    a->n_ints = (size_t)n;
    a->ints = c;
}

/* a float initializer named name of shape dims[ndim] holding numel floats, left for the caller
 * to fill; returns its data (NULL if out of memory) */
static float *ox_tensor(ox *b, const char *name, int ndim, const int64_t *dims) {
    Onnx__TensorProto *t = ox_new(b, sizeof *t);
    int64_t *d = ox_new(b, (size_t)(ndim > 0 ? ndim : 1) * sizeof *d);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)dims[i];
    float *data = ox_new(b, numel * sizeof(float));
    if (!t || !d || !data || !name || b->n_inits == b->cap_inits) {
        b->oom = true;
        return NULL;
    }
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    if (ndim > 0) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = (char *)name;
    t->has_raw_data = 1; /* little-endian float32, as raw_data is defined */
    t->raw_data.len = numel * sizeof(float);
    t->raw_data.data = (uint8_t *)data;
    b->inits[b->n_inits++] = t;
    return data;
}

/* parameter p of m as an initializer under its own name, conv weights OHWI -> OIHW; the name */
static const char *ox_param(ox *b, const net *m, int p) {
    const param *pa = &m->params[p];
    int64_t dims[4];
    for (int i = 0; i < pa->ndim; i++) dims[i] = pa->shape[i];
    float *dst = ox_tensor(b, pa->name, pa->ndim, dims);
    if (!dst) return NULL;
    const float *src = m->data + pa->off;
    if (!pa->ohwi) {
        memcpy(dst, src, pa->numel * sizeof(float));
        return pa->name;
    }
    const size_t O = (size_t)pa->shape[0], I = (size_t)pa->shape[1], KH = (size_t)pa->shape[2],
                 KW = (size_t)pa->shape[3];
    for (size_t o = 0; o < O; o++)
        for (size_t kh = 0; kh < KH; kh++)
            for (size_t kw = 0; kw < KW; kw++)
                for (size_t i = 0; i < I; i++)
                    dst[((o * I + i) * KH + kh) * KW + kw] = src[((o * KH + kh) * KW + kw) * I + i];
    return pa->name;
}

/* Clip(x, 0, 6) -> out: ReLU6 */
static void ox_relu6(ox *b, const char *x, const char *out) {
    if (!b->clip_lo) {
        float *lo = ox_tensor(b, "relu6_min", 0, NULL), *hi = ox_tensor(b, "relu6_max", 0, NULL);
        if (!lo || !hi) return;
        *lo = 0, *hi = 6;
        b->clip_lo = "relu6_min", b->clip_hi = "relu6_max";
    }
    ox_node(b, "Clip", out, out, 3, x, b->clip_lo, b->clip_hi);
}

/* what each stylenet node's output is in the graph: its value's name and rank (4: NCHW, 2: NC) */
typedef struct {
    const char **val;
    int *rank;
} ox_vals;

/* the name of node i's own output value */
static const char *out_name(ox *b, const net *m, int i, const char *op) {
    return m->nodes[i].name[0] ? ox_str(b, "%s", m->nodes[i].name) : ox_str(b, "%s_%d", op, i);
}

/* value x as rank 2 [N, C*H*W] in stylenet's flatten order (channels last) */
static const char *flatten_value(ox *b, const net *m, int x, const ox_vals *v, int i) {
    const char *in = v->val[x];
    if (v->rank[x] == 2) return in;
    if (m->nodes[x].h * m->nodes[x].w > 1) {
        Onnx__NodeProto *t = ox_node(b, "Transpose", ox_str(b, "to_nhwc_%d", i), ox_str(b, "nhwc_%d", i), 1, in);
        ox_attr_ints(b, t, "perm", 4, (const int64_t[]){0, 2, 3, 1});
        in = t ? t->output[0] : NULL;
    }
    Onnx__NodeProto *f = ox_node(b, "Flatten", ox_str(b, "flatten_%d", i), ox_str(b, "flat_%d", i), 1, in);
    ox_attr_int(b, f, "axis", 1);
    return f ? f->output[0] : NULL;
}

static void emit_conv(ox *b, const net *m, int i, ox_vals *v) {
    const node *nd = &m->nodes[i];
    const conv_desc *d = &nd->conv;
    if (v->rank[nd->in0] != 4) {
        b->err = "a convolution of a flattened value";
        return;
    }
    const char *w = ox_param(b, m, nd->p_w), *out = out_name(b, m, i, "conv");
    Onnx__NodeProto *c = nd->p_b >= 0 ? ox_node(b, "Conv", out, out, 3, v->val[nd->in0], w, ox_param(b, m, nd->p_b))
                                      : ox_node(b, "Conv", out, out, 2, v->val[nd->in0], w);
    ox_attr_ints(b, c, "kernel_shape", 2, (const int64_t[]){d->kh, d->kw});
    ox_attr_ints(b, c, "strides", 2, (const int64_t[]){d->sh, d->sw});
    ox_attr_ints(b, c, "pads", 4, (const int64_t[]){d->pt, d->pl, d->pb, d->pr});
    ox_attr_int(b, c, "group", d->groups);
    v->val[i] = out;
    v->rank[i] = 4;
    if (d->act == ACT_NONE || !out) return;
    /* an activation recorded in the descriptor (the zoo keeps ReLUs as nodes of their own) */
    const char *a = ox_str(b, "%s_act", out);
    if (d->act == ACT_RELU) ox_node(b, "Relu", a, a, 1, out);
    else ox_relu6(b, out, a);
    v->val[i] = a;
}

/* a BN parameter, or the constant c when the node has none (affine off) */
static const char *bn_param(ox *b, const net *m, int i, int p, const char *what, float c) {
    if (p >= 0) return ox_param(b, m, p);
    const char *name = ox_str(b, "%s.%s", m->nodes[i].name, what);
    int64_t dims[1] = {m->nodes[i].c};
    float *d = ox_tensor(b, name, 1, dims);
    for (int k = 0; d && k < m->nodes[i].c; k++) d[k] = c;
    return name;
}

static void emit_bn(ox *b, const net *m, int i, ox_vals *v) {
    const node *nd = &m->nodes[i];
    const char *out = out_name(b, m, i, "bn");
    Onnx__NodeProto *n = ox_node(b, "BatchNormalization", out, out, 5, v->val[nd->in0],
                                 bn_param(b, m, i, nd->p_w, "weight", 1), bn_param(b, m, i, nd->p_b, "bias", 0),
                                 bn_param(b, m, i, nd->p_mean, "running_mean", 0),
                                 bn_param(b, m, i, nd->p_var, "running_var", 1));
    ox_attr_float(b, n, "epsilon", nd->eps);
    v->val[i] = out;
    v->rank[i] = v->rank[nd->in0];
}

static void emit_pool(ox *b, const net *m, int i, ox_vals *v) {
    const node *nd = &m->nodes[i];
    const pool_desc *d = &nd->pool;
    bool mx = nd->op == OP_MAXPOOL;
    const char *out = out_name(b, m, i, mx ? "maxpool" : "avgpool");
    Onnx__NodeProto *p = ox_node(b, mx ? "MaxPool" : "AveragePool", out, out, 1, v->val[nd->in0]);
    ox_attr_ints(b, p, "kernel_shape", 2, (const int64_t[]){d->kh, d->kw});
    ox_attr_ints(b, p, "strides", 2, (const int64_t[]){d->sh, d->sw});
    ox_attr_ints(b, p, "pads", 4, (const int64_t[]){d->pt, d->pl, d->pb, d->pr});
    if (!mx) ox_attr_int(b, p, "count_include_pad", d->count_include_pad ? 1 : 0);
    v->val[i] = out;
    v->rank[i] = 4;
}

static void emit_linear(ox *b, const net *m, int i, ox_vals *v) {
    const node *nd = &m->nodes[i];
    const char *in = flatten_value(b, m, nd->in0, v, i), *w = ox_param(b, m, nd->p_w);
    const char *out = out_name(b, m, i, "linear");
    Onnx__NodeProto *g = nd->p_b >= 0 ? ox_node(b, "Gemm", out, out, 3, in, w, ox_param(b, m, nd->p_b))
                                      : ox_node(b, "Gemm", out, out, 2, in, w);
    ox_attr_int(b, g, "transB", 1);
    v->val[i] = out;
    v->rank[i] = 2;
}

/* an op of one input and one output whose rank is its input's (or `rank` when > 0) */
static void emit_simple(ox *b, const net *m, int i, ox_vals *v, const char *op, const char *tag, int rank) {
    const char *out = out_name(b, m, i, tag);
    ox_node(b, op, out, out, 1, v->val[m->nodes[i].in0]);
    v->val[i] = out;
    v->rank[i] = rank > 0 ? rank : v->rank[m->nodes[i].in0];
}

/* node i of m into the graph */
static void emit_node(ox *b, const net *m, int i, ox_vals *v) {
    const node *nd = &m->nodes[i];
    const char *out;
    switch (nd->op) {
    case OP_INPUT: b->err = "a second input node"; return;
    case OP_CONV: emit_conv(b, m, i, v); return;
    case OP_BN: emit_bn(b, m, i, v); return;
    case OP_RELU: emit_simple(b, m, i, v, "Relu", "relu", 0); return;
    case OP_RELU6:
        out = out_name(b, m, i, "relu6");
        ox_relu6(b, v->val[nd->in0], out);
        v->val[i] = out;
        v->rank[i] = v->rank[nd->in0];
        return;
    case OP_ADD:
        if (v->rank[nd->in0] != v->rank[nd->in1]) {
            b->err = "an addition of values of different ranks";
            return;
        }
        out = out_name(b, m, i, "add");
        ox_node(b, "Add", out, out, 2, v->val[nd->in0], v->val[nd->in1]);
        v->val[i] = out;
        v->rank[i] = v->rank[nd->in0];
        return;
    case OP_MAXPOOL:
    case OP_AVGPOOL: emit_pool(b, m, i, v); return;
    case OP_GAP: emit_simple(b, m, i, v, "GlobalAveragePool", "gap", 4); return;
    case OP_CONCATPOOL: {
        const char *mx = ox_str(b, "concatpool_%d_max", i), *av = ox_str(b, "concatpool_%d_avg", i);
        ox_node(b, "GlobalMaxPool", mx, mx, 1, v->val[nd->in0]);
        ox_node(b, "GlobalAveragePool", av, av, 1, v->val[nd->in0]);
        out = out_name(b, m, i, "concatpool");
        ox_attr_int(b, ox_node(b, "Concat", out, out, 2, mx, av), "axis", 1);
        v->val[i] = out;
        v->rank[i] = 4;
        return;
    }
    case OP_FLATTEN:
        v->val[i] = flatten_value(b, m, nd->in0, v, i);
        v->rank[i] = 2;
        return;
    case OP_LINEAR: emit_linear(b, m, i, v); return;
    case OP_DROPOUT:
    case OP_DROPPATH: /* the identity in eval */
        v->val[i] = v->val[nd->in0];
        v->rank[i] = v->rank[nd->in0];
        return;
    }
    b->err = "an unknown node";
}

/* a float tensor type [batch, dims...] */
static Onnx__ValueInfoProto *ox_value_info(ox *b, const char *name, int ndim, const int64_t *dims) {
    Onnx__ValueInfoProto *vi = ox_new(b, sizeof *vi);
    Onnx__TypeProto *tp = ox_new(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox_new(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox_new(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dp = ox_new(b, (size_t)(ndim + 1) * sizeof *dp);
    Onnx__TensorShapeProto__Dimension *dv = ox_new(b, (size_t)(ndim + 1) * sizeof *dv);
    if (!vi || !tp || !tt || !sh || !dp || !dv) return NULL;
    *vi = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    for (int i = 0; i <= ndim; i++) {
        dv[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (i == 0) {
            dv[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dv[i].dim_param = "batch";
        } else {
            dv[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dv[i].dim_value = dims[i - 1];
        }
        dp[i] = &dv[i];
    }
    sh->n_dim = (size_t)ndim + 1;
    sh->dim = dp;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = (char *)name;
    vi->type = tp;
    return vi;
}

/* the graph's nodes from m's input to its output, then "logits" and "probabilities" */
static Onnx__GraphProto *build_graph(ox *b, const net *m, const onnx_export_opts *o) {
    const int last = net_output(m), K = m->nodes[last].h * m->nodes[last].w * m->nodes[last].c;
    ox_vals v = {ox_new(b, (size_t)m->n_nodes * sizeof *v.val), ox_new(b, (size_t)m->n_nodes * sizeof *v.rank)};
    Onnx__GraphProto *g = ox_new(b, sizeof *g);
    Onnx__ValueInfoProto **ins = ox_new(b, sizeof *ins), **outs = ox_new(b, 2 * sizeof *outs);
    if (!v.val || !v.rank || !g || !ins || !outs) return NULL;
    v.val[0] = "input";
    v.rank[0] = 4;
    for (int i = 1; i <= last && !b->oom && !b->err; i++) emit_node(b, m, i, &v);
    if (b->oom || b->err) return NULL;
    /* [batch, K] in stylenet's order (channels last when the output is a map larger than 1x1) */
    ox_node(b, "Identity", "logits", "logits", 1, flatten_value(b, m, last, &v, m->n_nodes));
    const char *z = "logits";
    if (o->final != ONNX_FINAL_NONE && o->temperature > 0 && o->temperature != 1) {
        float *inv = ox_tensor(b, "inverse_temperature", 0, NULL);
        if (inv) *inv = (float)(1.0 / o->temperature);
        z = "calibrated_logits";
        ox_node(b, "Mul", z, z, 2, "logits", "inverse_temperature");
    }
    if (o->final == ONNX_FINAL_SIGMOID) ox_node(b, "Sigmoid", "probabilities", "probabilities", 1, z);
    if (o->final == ONNX_FINAL_SOFTMAX)
        ox_attr_int(b, ox_node(b, "Softmax", "probabilities", "probabilities", 1, z), "axis", 1);
    const node *in = &m->nodes[0];
    ins[0] = ox_value_info(b, "input", 3, (const int64_t[]){in->c, in->h, in->w});
    outs[0] = ox_value_info(b, "logits", 1, (const int64_t[]){K});
    if (o->final != ONNX_FINAL_NONE) outs[1] = ox_value_info(b, "probabilities", 1, (const int64_t[]){K});
    if (b->oom || !ins[0] || !outs[0] || (o->final != ONNX_FINAL_NONE && !outs[1])) return NULL;
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    g->name = m->arch[0] ? (char *)m->arch : "stylenet";
    g->n_node = b->n_nodes;
    g->node = b->nodes;
    g->n_initializer = b->n_inits;
    g->initializer = b->inits;
    g->n_input = 1;
    g->input = ins;
    g->n_output = o->final != ONNX_FINAL_NONE ? 2 : 1;
    g->output = outs;
    return g;
}

/* the model around graph g: IR version, opset, producer, metadata_props */
static Onnx__ModelProto *build_model(ox *b, Onnx__GraphProto *g, const onnx_export_opts *o) {
    Onnx__ModelProto *mp = ox_new(b, sizeof *mp);
    Onnx__OperatorSetIdProto *os = ox_new(b, sizeof *os), **osp = ox_new(b, sizeof *osp);
    Onnx__StringStringEntryProto *kv = ox_new(b, (size_t)(o->n_meta + 1) * sizeof *kv);
    Onnx__StringStringEntryProto **kvp = ox_new(b, (size_t)(o->n_meta + 1) * sizeof *kvp);
    if (!mp || !os || !osp || !kv || !kvp) return NULL;
    *os = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    os->domain = "";
    os->has_version = 1;
    os->version = OX_OPSET;
    osp[0] = os;
    for (int i = 0; i < o->n_meta; i++) {
        kv[i] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        kv[i].key = (char *)o->meta[2 * i];
        kv[i].value = (char *)o->meta[2 * i + 1];
        kvp[i] = &kv[i];
    }
    *mp = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    mp->has_ir_version = 1;
    mp->ir_version = OX_IR_VERSION;
    mp->n_opset_import = 1;
    mp->opset_import = osp;
    mp->producer_name = "stylenet";
    mp->doc_string = (char *)o->doc;
    mp->graph = g;
    mp->n_metadata_props = (size_t)o->n_meta;
    mp->metadata_props = kvp;
    return mp;
}

/* protobuf-c's output sink, appending to a FILE */
typedef struct {
    ProtobufCBuffer base;
    FILE *f;
} ox_sink;

static void sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data) {
    ox_sink *s = (ox_sink *)buf;
    if (len) (void)!fwrite(data, 1, len, s->f); /* a failure sets the stream's error flag */
}

static int write_model(FILE *f, void *ctx) {
    ox_sink s = {.base = {.append = sink_append}, .f = f};
    onnx__model_proto__pack_to_buffer(ctx, &s.base);
    return 0;
}

int onnx_export_net(const net *m, const onnx_export_opts *o, const char *path) {
    if (!m || m->n_nodes < 2 || m->nodes[0].op != OP_INPUT)
        return sn_error("%s: the network has no nodes to export", path);
    ox b = {.cap_nodes = 4 * (size_t)m->n_nodes + 8, .cap_inits = (size_t)m->n_params + 4 * (size_t)m->n_nodes + 8};
    b.nodes = calloc(b.cap_nodes, sizeof *b.nodes);
    b.inits = calloc(b.cap_inits, sizeof *b.inits);
    Onnx__GraphProto *g = b.nodes && b.inits ? build_graph(&b, m, o) : NULL;
    Onnx__ModelProto *mp = g ? build_model(&b, g, o) : NULL;
    int r;
    if (b.err) r = sn_error("%s: cannot express %s in ONNX", path, b.err);
    else if (!mp) r = sn_error("%s: out of memory building the ONNX graph", path);
    else r = sn_write_file_atomic(path, write_model, mp);
    ox_free(&b);
    return r;
}
