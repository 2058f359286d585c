/* net.c - the graph of a network and its parameters (see net.h): building, the parameter arena,
 * init, freezing, sharing, input size, multiply-adds.  Buffers: net_buffers.c; running: net_run.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "core/error.h"
#include "core/rng.h"
#include "nn/net_internal.h"

/* ---------------------------------------------------------------- building */

net *net_create(int h, int w, int c) {
    if (h <= 0 || w <= 0 || c <= 0) {
        sn_error("net_create: bad input shape %dx%dx%d", h, w, c);
        return NULL;
    }
    net *m = calloc(1, sizeof *m);
    if (!m) {
        sn_error("out of memory creating a network");
        return NULL;
    }
    m->out = -1;
    m->seed = 42;
    node in = {.op = OP_INPUT, .in0 = -1, .in1 = -1, .h = h, .w = w, .c = c,
               .p_w = -1, .p_b = -1, .p_mean = -1, .p_var = -1};
    m->nodes = calloc(16, sizeof(node));
    m->run = calloc(16, sizeof(struct node_run));
    if (!m->nodes || !m->run) {
        free(m->nodes);
        free(m->run);
        free(m);
        sn_error("out of memory creating a network");
        return NULL;
    }
    m->cap_nodes = 16;
    m->nodes[m->n_nodes++] = in;
    return m;
}

static void arena_unmap(float *p, size_t floats) {
    if (p) munmap(p, floats * sizeof(float));
}

net *net_share(const net *src) {
    net *c = malloc(sizeof *c);
    node *nodes = malloc(sizeof(node) * (size_t)src->n_nodes);
    struct node_run *run = calloc((size_t)src->n_nodes, sizeof(struct node_run)); /* run-time state is per net */
    if (!c || !nodes || !run) {
        free(c);
        free(nodes);
        free(run);
        sn_error("out of memory sharing a network");
        return NULL;
    }
    *c = *src;
    memcpy(nodes, src->nodes, sizeof(node) * (size_t)src->n_nodes);
    c->nodes = nodes;
    c->run = run;
    c->cap_nodes = src->n_nodes;
    c->grad = NULL;
    c->pool = NULL;
    c->n_pool = c->cap_pool = 0;
    c->arena = NULL;
    c->arena_cap = c->arena_top = 0;
    c->batch = c->cap_batch = 0;
    c->training = false;
    c->shared = true;
    c->workers = NULL;
    c->n_workers = 0;
    net_plan(c);
    return c;
}

void net_free(net *m) {
    if (!m) return;
    for (int i = 0; i < m->n_workers; i++) net_free(m->workers[i]);
    free(m->workers);
    net_buffers_free(m);
    free(m->nodes);
    free(m->run);
    if (!m->shared) { /* else the parameters are another net's */
        free(m->params);
        arena_unmap(m->data, m->cap_floats);
        arena_unmap(m->grad, m->cap_floats);
    }
    free(m);
}

void net_set_group(net *m, int group) { m->cur_group = group; }

static bool valid_input(net *m, int x) { return m && x >= 0 && x < m->n_nodes; }

/* appends a node reading x; returns its index or -1 */
static int add_node(net *m, op_kind op, int x, const char *name) {
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes * 2;
        node *n = realloc(m->nodes, (size_t)cap * sizeof(node));
        if (n) m->nodes = n;
        struct node_run *r = n ? realloc(m->run, (size_t)cap * sizeof(struct node_run)) : NULL;
        if (r) m->run = r;
        if (!n || !r) return sn_error("out of memory growing the network");
        m->cap_nodes = cap;
    }
    node *d = &m->nodes[m->n_nodes];
    memset(d, 0, sizeof *d);
    memset(&m->run[m->n_nodes], 0, sizeof(struct node_run));
    d->op = op;
    d->in0 = x;
    d->in1 = -1;
    d->group = m->cur_group;
    d->p_w = d->p_b = d->p_mean = d->p_var = -1;
    if (name) snprintf(d->name, sizeof d->name, "%s", name);
    m->batch = m->cap_batch = 0; /* the next net_set_batch sizes the new node too */
    const node *s = &m->nodes[x];
    d->h = s->h; d->w = s->w; d->c = s->c;
    return m->n_nodes++;
}

/* The parameter and gradient arenas are anonymous mappings reserved far beyond any network
 * (untouched pages cost no memory), so they never move while a model is built and the resident
 * size is what the parameters use; a network that outgrows the reservation moves once. */
#define ARENA_RESERVE ((size_t)1 << 30) /* floats: 4 GiB of address space each */

static float *arena_map(size_t floats) {
    void *p = mmap(NULL, floats * sizeof(float), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int arena_grow(net *m, size_t need) {
    size_t cap = m->cap_floats ? 2 * m->cap_floats : ARENA_RESERVE;
    while (cap < need) cap *= 2;
    float *nd = arena_map(cap), *ng = arena_map(cap);
    if (!nd || !ng) {
        arena_unmap(nd, cap);
        arena_unmap(ng, cap);
        return sn_error("out of memory (address space) for %zu parameters", need);
    }
    if (m->data) { /* mappings start zeroed: copy what is used */
        memcpy(nd, m->data, m->n_floats * sizeof(float));
        memcpy(ng, m->grad, m->n_floats * sizeof(float));
    }
    arena_unmap(m->data, m->cap_floats);
    arena_unmap(m->grad, m->cap_floats);
    m->data = nd;
    m->grad = ng;
    m->cap_floats = cap;
    return 0;
}

/* appends a parameter "<node name>.<suffix>" with PyTorch shape dims[0..ndim) */
static int add_param(net *m, int nd, const char *suffix, int ndim, const int *dims, bool ohwi,
                     bool buffer, init_kind init) {
    if (m->n_params == m->cap_params) {
        int cap = m->cap_params ? m->cap_params * 2 : 32;
        param *p = realloc(m->params, (size_t)cap * sizeof(param));
        if (!p) return sn_error("out of memory growing the parameter list");
        m->params = p;
        m->cap_params = cap;
    }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)dims[i];
    size_t off = (m->n_floats + 15) / 16 * 16; /* 64-byte aligned starts */
    if (off + numel > m->cap_floats && arena_grow(m, off + numel) < 0) return -1;
    param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", m->nodes[nd].name, suffix);
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = dims[i];
    p->ohwi = ohwi;
    p->buffer = buffer;
    p->node = nd;
    p->group = m->nodes[nd].group;
    p->init = init;
    p->off = off;
    p->numel = numel;
    m->n_floats = off + numel;
    return m->n_params++;
}

int net_add_buffer(net *m, int nd, const char *suffix, int ndim, const int *dims) {
    return add_param(m, nd, suffix, ndim, dims, false, true, INIT_NONE);
}

int net_conv_desc(net *m, int x, const char *name, conv_desc d, bool bias) {
    if (!valid_input(m, x)) return -1;
    const node *s = &m->nodes[x];
    d.h = s->h; d.w = s->w; d.cin = s->c;
    if (conv_desc_init(&d) < 0) return sn_error_prefix("conv '%s'", name ? name : "");
    int i = add_node(m, OP_CONV, x, name);
    if (i < 0) return -1;
    node *n = &m->nodes[i];
    n->conv = d;
    n->h = d.oh; n->w = d.ow; n->c = d.cout;
    int wd[4] = {d.cout, d.cin / d.groups, d.kh, d.kw};
    n->p_w = add_param(m, i, "weight", 4, wd, true, false, INIT_KAIMING_OUT);
    if (n->p_w < 0) return -1;
    if (bias) {
        int bd[1] = {d.cout};
        m->nodes[i].p_b = add_param(m, i, "bias", 1, bd, false, false, INIT_ZERO);
        if (m->nodes[i].p_b < 0) return -1;
    }
    return i;
}

int net_conv(net *m, int x, const char *name, int cout, int k, int stride, int pad, int groups, bool bias) {
    conv_desc d = {.cout = cout, .kh = k, .kw = k, .sh = stride, .sw = stride,
                   .pt = pad, .pb = pad, .pl = pad, .pr = pad, .groups = groups};
    return net_conv_desc(m, x, name, d, bias);
}

int net_conv_same(net *m, int x, const char *name, int cout, int k, int stride, int groups, bool bias) {
    if (!valid_input(m, x)) return -1;
    conv_desc d = {.cout = cout, .kh = k, .kw = k, .sh = stride, .sw = stride, .groups = groups};
    conv_same_padding(m->nodes[x].h, k, stride, &d.pt, &d.pb);
    conv_same_padding(m->nodes[x].w, k, stride, &d.pl, &d.pr);
    int i = net_conv_desc(m, x, name, d, bias);
    if (i >= 0) m->nodes[i].same_pad = true;
    return i;
}

int net_bn(net *m, int x, const char *name, float eps, float momentum) {
    if (!valid_input(m, x)) return -1;
    int i = add_node(m, OP_BN, x, name);
    if (i < 0) return -1;
    int c[1] = {m->nodes[i].c};
    m->nodes[i].eps = eps;
    m->nodes[i].momentum = momentum;
    int pw = add_param(m, i, "weight", 1, c, false, false, INIT_ONE);
    int pb = add_param(m, i, "bias", 1, c, false, false, INIT_ZERO);
    int pm = add_param(m, i, "running_mean", 1, c, false, true, INIT_ZERO);
    int pv = add_param(m, i, "running_var", 1, c, false, true, INIT_ONE);
    if (pw < 0 || pb < 0 || pm < 0 || pv < 0) return -1;
    node *n = &m->nodes[i];
    n->p_w = pw; n->p_b = pb; n->p_mean = pm; n->p_var = pv;
    return i;
}

int net_relu(net *m, int x) { return valid_input(m, x) ? add_node(m, OP_RELU, x, NULL) : -1; }
int net_relu6(net *m, int x) { return valid_input(m, x) ? add_node(m, OP_RELU6, x, NULL) : -1; }

int net_add(net *m, int a, int b) {
    if (!valid_input(m, a) || !valid_input(m, b)) return -1;
    const node *na = &m->nodes[a], *nb = &m->nodes[b];
    if (na->h != nb->h || na->w != nb->w || na->c != nb->c)
        return sn_error("add: shapes differ: %dx%dx%d and %dx%dx%d", na->h, na->w, na->c, nb->h, nb->w, nb->c);
    int i = add_node(m, OP_ADD, a, NULL);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

static int add_pool(net *m, op_kind op, int x, pool_desc d) {
    const node *s = &m->nodes[x];
    d.h = s->h; d.w = s->w; d.c = s->c;
    if (pool_desc_init(&d) < 0) return -1;
    int i = add_node(m, op, x, NULL);
    if (i < 0) return -1;
    m->nodes[i].pool = d;
    m->nodes[i].h = d.oh;
    m->nodes[i].w = d.ow;
    return i;
}

int net_maxpool(net *m, int x, int k, int stride, int pad) {
    if (!valid_input(m, x)) return -1;
    pool_desc d = {.kh = k, .kw = k, .sh = stride, .sw = stride, .pt = pad, .pb = pad, .pl = pad, .pr = pad};
    return add_pool(m, OP_MAXPOOL, x, d);
}

int net_avgpool(net *m, int x, pool_desc d) {
    if (!valid_input(m, x)) return -1;
    return add_pool(m, OP_AVGPOOL, x, d);
}

static int add_flat(net *m, op_kind op, int x, int c) {
    if (!valid_input(m, x)) return -1;
    int i = add_node(m, op, x, NULL);
    if (i < 0) return -1;
    m->nodes[i].h = m->nodes[i].w = 1;
    m->nodes[i].c = c;
    return i;
}

int net_gap(net *m, int x) { return valid_input(m, x) ? add_flat(m, OP_GAP, x, m->nodes[x].c) : -1; }
int net_concatpool(net *m, int x) { return valid_input(m, x) ? add_flat(m, OP_CONCATPOOL, x, 2 * m->nodes[x].c) : -1; }
int net_flatten(net *m, int x) {
    return valid_input(m, x) ? add_flat(m, OP_FLATTEN, x, m->nodes[x].h * m->nodes[x].w * m->nodes[x].c) : -1;
}

int net_linear(net *m, int x, const char *name, int out, bool bias) {
    if (!valid_input(m, x)) return -1;
    const node *s = &m->nodes[x];
    if (s->h != 1 || s->w != 1)
        return sn_error("linear '%s': input is %dx%dx%d, expected 1x1xC (pool or flatten first)", name, s->h, s->w, s->c);
    if (out <= 0) return sn_error("linear '%s': %d outputs", name, out);
    int in = s->c;
    int i = add_node(m, OP_LINEAR, x, name);
    if (i < 0) return -1;
    m->nodes[i].c = out;
    int wd[2] = {out, in};
    int pw = add_param(m, i, "weight", 2, wd, false, false, INIT_TORCH_DEFAULT);
    if (pw < 0) return -1;
    m->nodes[i].p_w = pw;
    if (bias) {
        int bd[1] = {out};
        int pb = add_param(m, i, "bias", 1, bd, false, false, INIT_TORCH_DEFAULT);
        if (pb < 0) return -1;
        m->nodes[i].p_b = pb;
    }
    return i;
}

int net_dropout(net *m, int x, float p) {
    if (!valid_input(m, x)) return -1;
    if (!(p >= 0 && p < 1)) return sn_error("dropout: p = %g, expected 0 <= p < 1", p);
    int i = add_node(m, OP_DROPOUT, x, NULL);
    if (i >= 0) m->nodes[i].p = p;
    return i;
}

int net_droppath(net *m, int x, float p) {
    if (!valid_input(m, x)) return -1;
    if (!(p >= 0 && p < 1)) return sn_error("drop-path: p = %g, expected 0 <= p < 1", p);
    int i = add_node(m, OP_DROPPATH, x, NULL);
    if (i >= 0) m->nodes[i].p = p;
    return i;
}

int net_set_input_size(net *m, int h, int w) {
    if (h <= 0 || w <= 0) return sn_error("input size %dx%d", h, w);
    node *tmp = malloc(sizeof(node) * (size_t)m->n_nodes);
    if (!tmp) return sn_error("out of memory");
    memcpy(tmp, m->nodes, sizeof(node) * (size_t)m->n_nodes);
    tmp[0].h = h;
    tmp[0].w = w;
    for (int i = 1; i < m->n_nodes; i++) {
        node *d = &tmp[i];
        const node *a = &tmp[d->in0];
        switch (d->op) {
        case OP_CONV: {
            conv_desc c = d->conv;
            c.h = a->h;
            c.w = a->w;
            if (d->same_pad) {
                conv_same_padding(c.h, c.kh, c.sh, &c.pt, &c.pb);
                conv_same_padding(c.w, c.kw, c.sw, &c.pl, &c.pr);
            }
            if (conv_desc_init(&c) < 0) {
                sn_error_prefix("input %dx%d: conv '%s'", h, w, d->name);
                free(tmp);
                return -1;
            }
            d->conv = c;
            d->h = c.oh;
            d->w = c.ow;
            break;
        }
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            pool_desc p = d->pool;
            p.h = a->h;
            p.w = a->w;
            if (pool_desc_init(&p) < 0) {
                sn_error_prefix("input %dx%d: pooling node %d", h, w, i);
                free(tmp);
                return -1;
            }
            d->pool = p;
            d->h = p.oh;
            d->w = p.ow;
            break;
        }
        case OP_ADD:
            if (a->h != tmp[d->in1].h || a->w != tmp[d->in1].w) {
                sn_error("input %dx%d: the two sides of residual add %d differ (%dx%d and %dx%d)", h, w, i, a->h, a->w,
                         tmp[d->in1].h, tmp[d->in1].w);
                free(tmp);
                return -1;
            }
            d->h = a->h;
            d->w = a->w;
            break;
        case OP_GAP:
        case OP_CONCATPOOL: break; /* 1 x 1 whatever the input */
        case OP_FLATTEN:
        case OP_LINEAR:
            if ((d->op == OP_FLATTEN && (size_t)a->h * a->w * a->c != (size_t)d->c) ||
                (d->op == OP_LINEAR && (a->h != 1 || a->w != 1))) {
                sn_error("input %dx%d: node %d needs a fixed-size input (%s)", h, w, i,
                         d->op == OP_LINEAR ? "linear" : "flatten");
                free(tmp);
                return -1;
            }
            break;
        default: /* element-wise: the input's shape */
            d->h = a->h;
            d->w = a->w;
            break;
        }
    }
    memcpy(m->nodes, tmp, sizeof(node) * (size_t)m->n_nodes);
    free(tmp);
    m->batch = m->cap_batch = 0; /* buffers are resized by the next net_set_batch */
    return 0;
}

/* ---------------------------------------------------------------- parameters */

float *net_param(net *m, int i) { return m->data + m->params[i].off; }
float *net_grad(net *m, int i) { return m->grad + m->params[i].off; }

int net_find_param(const net *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

size_t net_num_trainable(const net *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].buffer && !m->params[i].frozen) n += m->params[i].numel;
    return n;
}

static void fans(const param *p, double *fan_in, double *fan_out) {
    double recept = 1;
    for (int i = 2; i < p->ndim; i++) recept *= p->shape[i];
    *fan_in = p->ndim >= 2 ? p->shape[1] * recept : p->shape[0];
    *fan_out = p->shape[0] * recept;
}

void net_init_params(net *m, uint64_t seed) {
    m->seed = seed;
    for (int i = 0; i < m->n_params; i++) {
        param *p = &m->params[i];
        float *x = net_param(m, i);
        double fi, fo;
        fans(p, &fi, &fo);
        if (p->init == INIT_TORCH_DEFAULT && p->ndim == 1) {
            /* a bias: bound from its node's weight fan-in, as nn.Linear / nn.Conv2d */
            int w = m->nodes[p->node].p_w;
            if (w >= 0) fans(&m->params[w], &fi, &fo);
        }
        for (size_t j = 0; j < p->numel; j++) {
            float v;
            switch (p->init) {
            case INIT_ZERO: v = 0; break;
            case INIT_ONE: v = 1; break;
            case INIT_KAIMING_OUT: v = (float)(sqrt(2.0 / fo)) * rng_normal(seed, (uint64_t)i, j); break;
            case INIT_KAIMING_IN: v = (float)(sqrt(2.0 / fi)) * rng_normal(seed, (uint64_t)i, j); break;
            case INIT_TORCH_DEFAULT: v = (float)(1.0 / sqrt(fi)) * (2 * rng_uniform(seed, (uint64_t)i, j) - 1); break;
            case INIT_NORMAL_001: v = 0.01f * rng_normal(seed, (uint64_t)i, j); break;
            default: continue; /* INIT_NONE: leave as is */
            }
            x[j] = v;
        }
    }
    for (int i = 0; i < m->n_nodes; i++) m->nodes[i].tracked = 0;
}

void net_freeze_groups(net *m, int below) {
    for (int i = 0; i < m->n_params; i++) m->params[i].frozen = m->params[i].group < below;
    net_plan(m); /* which nodes need a gradient */
}

void net_freeze_bn(net *m, int below, bool frozen) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_BN && m->nodes[i].group < below) m->nodes[i].bn_frozen = frozen;
}

/* ---------------------------------------------------------------- running */
int net_output(const net *m) { return m->out >= 0 ? m->out : m->n_nodes - 1; }

size_t net_out_size(const net *m) {
    const node *o = &m->nodes[net_output(m)];
    return (size_t)o->h * o->w * o->c;
}

void net_freeze_weights(net *m) {
    static unsigned long next;
    m->wkey = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED); /* unique in the process: never reused */
}

void net_set_act_fusion(net *m, bool on) {
    m->act_unfused = !on;
    net_plan(m);
}

void net_set_conv_algo(net *m, int algo) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_CONV) m->nodes[i].conv.algo = algo;
}

void net_zero_grad(net *m) { memset(m->grad, 0, m->n_floats * sizeof(float)); }


double net_macs(const net *m) {
    double macs = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        if (d->op == OP_CONV) macs += conv2d_macs(&d->conv, 1);
        else if (d->op == OP_LINEAR) macs += (double)m->nodes[d->in0].c * d->c;
    }
    return macs;
}
