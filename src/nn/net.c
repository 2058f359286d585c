/* net.c - building, running and differentiating a network held as a node list (see net.h). */
#include "nn/net.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "core/error.h"
#include "core/rng.h"
#include "kernels/batchnorm.h"
#include "kernels/eltwise.h"
#include "kernels/linear.h"

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
    if (!m->nodes) {
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

static void free_runtime(node *d) {
    if (!d->pooled_y) sn_free(d->y);
    sn_free(d->save_mean); sn_free(d->save_invstd); sn_free(d->scale); sn_free(d->shift);
    sn_free(d->argmax); sn_free(d->mask);
    d->y = d->dy = d->save_mean = d->save_invstd = d->scale = d->shift = NULL;
    d->pooled_y = false;
    d->argmax = NULL;
    d->mask = NULL;
}

static void pool_free_all(net *m) {
    for (int i = 0; i < m->n_pool; i++)
        if (m->pool[i].own) sn_free(m->pool[i].p);
    arena_unmap(m->arena, m->arena_cap);
    m->arena = NULL;
    m->arena_cap = m->arena_top = 0;
    free(m->pool);
    m->pool = NULL;
    m->n_pool = m->cap_pool = 0;
}

net *net_share(const net *src) {
    net *c = malloc(sizeof *c);
    node *nodes = malloc(sizeof(node) * (size_t)src->n_nodes);
    if (!c || !nodes) {
        free(c);
        free(nodes);
        sn_error("out of memory sharing a network");
        return NULL;
    }
    *c = *src;
    memcpy(nodes, src->nodes, sizeof(node) * (size_t)src->n_nodes);
    for (int i = 0; i < src->n_nodes; i++) { /* run-time state is per net */
        node *d = &nodes[i];
        d->y = d->dy = d->save_mean = d->save_invstd = d->scale = d->shift = NULL;
        d->argmax = NULL;
        d->mask = NULL;
        d->pooled_y = d->fused = false;
        d->refs = 0;
    }
    c->nodes = nodes;
    c->cap_nodes = src->n_nodes;
    c->grad = NULL;
    c->scratch = NULL;
    c->scratch_floats = 0;
    c->pool = NULL;
    c->n_pool = c->cap_pool = 0;
    c->arena = NULL;
    c->arena_cap = c->arena_top = 0;
    c->batch = c->cap_batch = 0;
    c->training = false;
    c->shared = true;
    return c;
}

void net_free(net *m) {
    if (!m) return;
    for (int i = 0; i < m->n_nodes; i++) free_runtime(&m->nodes[i]);
    pool_free_all(m);
    free(m->nodes);
    if (m->shared) { /* the parameters are another net's */
        sn_free(m->scratch);
        free(m);
        return;
    }
    free(m->params);
    arena_unmap(m->data, m->cap_floats);
    arena_unmap(m->grad, m->cap_floats);
    sn_free(m->scratch);
    free(m);
}

void net_set_group(net *m, int group) { m->cur_group = group; }

static bool valid_input(net *m, int x) { return m && x >= 0 && x < m->n_nodes; }

/* appends a node reading x; returns its index or -1 */
static int add_node(net *m, op_kind op, int x, const char *name) {
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes * 2;
        node *n = realloc(m->nodes, (size_t)cap * sizeof(node));
        if (!n) return sn_error("out of memory growing the network");
        m->nodes = n;
        m->cap_nodes = cap;
    }
    node *d = &m->nodes[m->n_nodes];
    memset(d, 0, sizeof *d);
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

/* ---------------------------------------------------------------- memory */

/* a transient node's output is recomputable from its kept input: batch norm (saved scale and
 * shift), ReLU/ReLU6, and a convolution of the network input; everything else, and the output and
 * kept nodes, persist */
static bool is_transient(const net *m, int i) {
    const node *d = &m->nodes[i];
    if (d->keep || i == net_output(m)) return false;
    /* a convolution of the network input (the stem): recomputed in backward from the input, which
     * is kept anyway.  Its output is the largest activation of a resnet (64 channels at half the
     * input resolution: 67 MB of resnet34's batch-64 step at 128 px); recomputing it costs one
     * stem forward (~1% of the step). */
    if (d->op == OP_CONV && d->in0 == 0) return true;
    return d->op == OP_BN || d->op == OP_RELU || d->op == OP_RELU6;
}

/* The pool: activation buffers borrowed and given back during forward and backward.
 * All of them are pieces of one arena, a large address-space reservation (MAP_NORESERVE) that is
 * resident only where touched; pool_get takes the best-fitting free piece (split when it is at
 * least POOL_SPLIT floats larger, the rest stays free), else extends the top of the arena, and
 * pool_put merges a freed piece with its free neighbours.  So a freed buffer serves any later
 * request that fits in it or in the free space around it, and the resident size is the highest
 * top ever reached, close to the largest live total (resnet34 batch 64 at 128 px: 411 MB with
 * separate blocks per buffer size, 493 MB before buffers could be split).  Shapes repeat from
 * step to step, so the pool settles after the first step.  If the reservation is exhausted,
 * pieces become allocations of their own ("own"). */
#define POOL_SPLIT ((size_t)64) /* floats: smaller rests stay with the piece */
#define POOL_RESERVE ((size_t)1 << 34) /* 64 GiB of address space, in floats */
static int pool_grow(net *m) {
    if (m->n_pool < m->cap_pool) return 0;
    int cap = m->cap_pool ? 2 * m->cap_pool : 16;
    net_block *nb = realloc(m->pool, sizeof(net_block) * (size_t)cap);
    if (!nb) return sn_error("out of memory for activation buffers");
    m->pool = nb;
    m->cap_pool = cap;
    return 0;
}

static float *pool_get(net *m, size_t n) {
    n = (n + 15) & ~(size_t)15; /* pieces stay 64-byte aligned */
    int best = -1, top = -1;
    for (int i = 0; i < m->n_pool; i++) {
        net_block *b = &m->pool[i];
        if (!b->own && b->p + b->cap == m->arena + m->arena_top) top = i;
        if (!b->used && b->cap >= n && (best < 0 || b->cap < m->pool[best].cap)) best = i;
    }
    if (pool_grow(m) < 0) return NULL; /* room for a split piece or a new one */
    if (best >= 0) {
        net_block *b = &m->pool[best];
        if (b->cap - n >= POOL_SPLIT) {
            m->pool[m->n_pool++] = (net_block){.p = b->p + n, .cap = b->cap - n, .used = false, .own = false};
            b->cap = n;
        }
        b->used = true;
        return b->p;
    }
    if (!m->arena) {
        void *q = mmap(NULL, POOL_RESERVE * sizeof(float), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (q != MAP_FAILED) m->arena = q, m->arena_cap = POOL_RESERVE;
    }
    if (top >= 0 && !m->pool[top].used && m->arena_top - m->pool[top].cap + n <= m->arena_cap) {
        net_block *b = &m->pool[top]; /* a free piece at the top grows to fit */
        m->arena_top += n - b->cap;
        b->cap = n;
        b->used = true;
        return b->p;
    }
    if (m->arena && m->arena_top + n <= m->arena_cap) {
        float *p = m->arena + m->arena_top;
        m->arena_top += n;
        m->pool[m->n_pool++] = (net_block){.p = p, .cap = n, .used = true, .own = false};
        return p;
    }
    float *p = sn_alloc(n * sizeof(float), "activation buffers");
    if (!p) return NULL;
    m->pool[m->n_pool++] = (net_block){.p = p, .cap = n, .used = true, .own = true};
    return p;
}

static void pool_put(net *m, float *p) {
    int i = -1;
    for (int k = 0; k < m->n_pool; k++)
        if (m->pool[k].p == p) i = k;
    if (i < 0) return;
    m->pool[i].used = false;
    if (m->pool[i].own) return; /* allocations of their own are never next to anything */
    for (bool merged = true; merged;) { /* with free neighbours in the arena */
        merged = false;
        for (int k = 0; k < m->n_pool; k++) {
            net_block *a = &m->pool[i], *b = &m->pool[k];
            if (k == i || b->used || b->own) continue;
            int lo = -1, hi = -1;
            if (b->p == a->p + a->cap) lo = i, hi = k;      /* b is the piece after a */
            else if (a->p == b->p + b->cap) lo = k, hi = i; /* a is the piece after b */
            if (lo < 0) continue;
            m->pool[lo].cap += m->pool[hi].cap;
            m->pool[hi] = m->pool[--m->n_pool];
            if (lo == m->n_pool) lo = hi; /* lo was the last entry: it moved into hi's slot */
            i = lo;
            merged = true;
            break;
        }
    }
}

static void drop_y(net *m, node *d) {
    if (d->pooled_y) {
        pool_put(m, d->y);
        d->y = NULL;
    }
    d->pooled_y = false;
}

/* persistent outputs have their own buffer: the input, the output and kept nodes */
static bool persists(const net *m, int i) { return i == 0 || i == net_output(m) || m->nodes[i].keep; }

static void drop_dy(net *m, node *d) {
    if (d->dy) pool_put(m, d->dy);
    d->dy = NULL;
}

static size_t node_size(const node *d) { return (size_t)d->h * d->w * d->c; }

static bool trainable(const net *m, int p) { return p >= 0 && !m->params[p].frozen && !m->params[p].buffer; }

/* which nodes need d loss / d output: those with a trainable parameter at or below them */
static void mark_need_dy(net *m) {
    for (int i = 0; i < m->n_nodes; i++) {
        node *d = &m->nodes[i];
        bool need = trainable(m, d->p_w) || trainable(m, d->p_b);
        if (d->in0 >= 0 && m->nodes[d->in0].need_dy) need = true;
        if (d->in1 >= 0 && m->nodes[d->in1].need_dy) need = true;
        d->need_dy = need;
    }
}

static int alloc_node(net *m, int i, int n) {
    node *d = &m->nodes[i];
    size_t sz = (size_t)n * node_size(d);
    d->transient = is_transient(m, i);
    if (persists(m, i)) {
        d->y = sn_alloc(sz * sizeof(float), "activations");
        if (!d->y) return -1;
    }
    if (d->op == OP_BN) {
        d->save_mean = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        d->save_invstd = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        d->scale = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        d->shift = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        if (!d->save_mean || !d->save_invstd || !d->scale || !d->shift) return -1;
    } else if (d->op == OP_MAXPOOL || d->op == OP_CONCATPOOL) {
        d->argmax = sn_alloc(sz * sizeof(int32_t), "pooling indices");
        if (!d->argmax) return -1;
    } else if (d->op == OP_DROPOUT) {
        d->mask = sn_alloc(sz, "dropout mask");
        if (!d->mask) return -1;
    }
    return 0;
}

int net_set_batch(net *m, int n) {
    if (n <= 0) return sn_error("batch size %d", n);
    if (n <= m->cap_batch) {
        m->batch = n;
        return 0;
    }
    for (int i = 0; i < m->n_nodes; i++) free_runtime(&m->nodes[i]);
    pool_free_all(m);
    m->batch = m->cap_batch = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (alloc_node(m, i, n) < 0) return -1;
    m->batch = m->cap_batch = n;
    return 0;
}

int net_keep(net *m, int i) {
    if (i < 0 || i >= m->n_nodes) return sn_error("net_keep: no node %d", i);
    node *d = &m->nodes[i];
    d->keep = true;
    if (m->cap_batch > 0 && (d->pooled_y || !d->y)) {
        drop_y(m, d);
        d->transient = false;
        d->y = sn_alloc((size_t)m->cap_batch * node_size(d) * sizeof(float), "activations");
        if (!d->y) return -1;
    }
    return 0;
}

float *net_node_y(net *m, int i) {
    if (i < 0 || i >= m->n_nodes || !m->nodes[i].keep) return NULL;
    return m->nodes[i].y;
}

/* ---------------------------------------------------------------- forward */

static int act_of(op_kind op) { return op == OP_RELU ? 1 : op == OP_RELU6 ? 2 : 0; }

/* gives a node without its own buffer a pooled one */
static int take_y(net *m, node *d) {
    if (d->y) return 0;
    d->y = pool_get(m, (size_t)m->batch * node_size(d));
    if (!d->y) return -1;
    d->pooled_y = true;
    return 0;
}

/* computes node i's output from its inputs' outputs (which must be present; a fused batch norm
 * input is applied on the fly) */
static int compute(net *m, int i, bool training) {
    const int n = m->batch;
    node *d = &m->nodes[i];
    const node *a = &m->nodes[d->in0];
    const size_t cnt = (size_t)n * node_size(d);
    if (d->fused) return 0; /* its consumer applies it */
    if (take_y(m, d) < 0) return -1;
    switch (d->op) {
    case OP_CONV:
        conv2d_forward_keyed(&d->conv, n, a->y, net_param(m, d->p_w), d->p_b >= 0 ? net_param(m, d->p_b) : NULL, d->y,
                             training ? 0 : m->wkey);
        break;
    case OP_BN: batchnorm_apply(n * d->h * d->w, d->c, a->y, d->scale, d->shift, NULL, 0, d->y); break;
    case OP_RELU:
    case OP_RELU6:
        if (d->conv_in) {
            conv_desc cd = a->conv;
            cd.act = act_of(d->op);
            conv2d_forward_keyed(&cd, n, m->nodes[a->in0].y, net_param(m, a->p_w),
                                 a->p_b >= 0 ? net_param(m, a->p_b) : NULL, d->y, training ? 0 : m->wkey);
        } else if (a->op == OP_BN && a->fused) {
            const node *x = &m->nodes[a->in0];
            batchnorm_apply(n * d->h * d->w, d->c, x->y, a->scale, a->shift, NULL, act_of(d->op), d->y);
        } else if (d->op == OP_RELU) {
            eltwise_relu_forward(cnt, a->y, d->y);
        } else {
            eltwise_relu6_forward(cnt, a->y, d->y);
        }
        break;
    case OP_ADD: {
        const node *b = &m->nodes[d->in1];
        if (a->op == OP_BN && a->fused)
            batchnorm_apply(n * d->h * d->w, d->c, m->nodes[a->in0].y, a->scale, a->shift, b->y, 0, d->y);
        else if (b->op == OP_BN && b->fused)
            batchnorm_apply(n * d->h * d->w, d->c, m->nodes[b->in0].y, b->scale, b->shift, a->y, 0, d->y);
        else
            eltwise_add_forward(cnt, a->y, b->y, d->y);
        break;
    }
    case OP_MAXPOOL:
        if (a->fused) { /* max pool of ReLU(batch norm(x)) */
            const node *b = &m->nodes[a->in0];
            maxpool_forward_bn_act(&d->pool, n, m->nodes[b->in0].y, b->scale, b->shift, act_of(a->op), d->y, d->argmax);
        } else {
            maxpool_forward(&d->pool, n, a->y, d->y, d->argmax);
        }
        break;
    case OP_AVGPOOL: avgpool_forward(&d->pool, n, a->y, d->y); break;
    case OP_GAP: global_avgpool_forward(n, a->h * a->w, a->c, a->y, d->y); break;
    case OP_CONCATPOOL: concatpool_forward(n, a->h * a->w, a->c, a->y, d->y, d->argmax); break;
    case OP_FLATTEN: memcpy(d->y, a->y, cnt * sizeof(float)); break;
    case OP_LINEAR:
        linear_forward(n, a->c, d->c, a->y, net_param(m, d->p_w), d->p_b >= 0 ? net_param(m, d->p_b) : NULL, d->y);
        break;
    case OP_DROPOUT:
        if (training && d->p > 0)
            eltwise_dropout_forward(cnt, d->p, m->seed, m->step * 4096 + (uint64_t)i, a->y, d->y, d->mask);
        else
            memcpy(d->y, a->y, cnt * sizeof(float));
        break;
    case OP_INPUT: break;
    }
    return 0;
}

const float *net_forward(net *m, const float *x, bool training) {
    memcpy(m->nodes[0].y, x, (size_t)m->batch * node_size(&m->nodes[0]) * sizeof(float));
    return net_forward_from(m, 1, training);
}

const float *net_forward_from(net *m, int first, bool training) {
    const int n = m->batch;
    m->training = training;
    if (training) m->step++;
    int last = net_output(m);
    if (first < 1) first = 1;
    /* consumers of each node among first..last; a batch norm with one consumer that can apply
     * it (ReLU, ReLU6, add) is fused into that consumer */
    for (int i = 0; i <= last; i++) {
        drop_y(m, &m->nodes[i]);
        m->nodes[i].refs = 0;
        m->nodes[i].fused = m->nodes[i].conv_in = false;
        m->nodes[i].transient = is_transient(m, i);
    }
    for (int i = first; i <= last; i++) {
        node *d = &m->nodes[i];
        m->nodes[d->in0].refs++;
        if (d->op == OP_ADD) m->nodes[d->in1].refs++;
    }
    for (int i = first; i <= last; i++) {
        node *d = &m->nodes[i];
        if (d->op != OP_ADD && d->op != OP_RELU && d->op != OP_RELU6) continue;
        node *a = &m->nodes[d->in0];
        if (a->op == OP_BN && a->transient && a->refs == 1 && d->in0 >= first) {
            a->fused = true;
        } else if (d->op == OP_ADD) {
            node *b = &m->nodes[d->in1];
            if (b->op == OP_BN && b->transient && b->refs == 1 && d->in1 >= first) b->fused = true;
        }
    }
    for (int i = first; i <= last; i++) {
        /* ReLU/ReLU6 of a convolution read by nothing else: the convolution applies it in the same
         * pass, and the ReLU's output (kept like the convolution's would be, unless both are
         * recomputable) is what backward reads, for its mask too (y > 0, 0 < y < 6) */
        node *d = &m->nodes[i], *a = &m->nodes[d->in0];
        if ((d->op == OP_RELU || d->op == OP_RELU6) && a->op == OP_CONV && a->refs == 1 && d->in0 >= first &&
            !persists(m, d->in0) && !m->no_act_fusion) {
            a->fused = true;
            d->conv_in = true;
            d->transient = d->transient && a->transient;
        }
    }
    for (int i = first; i <= last; i++) { /* max pool of ReLU(batch norm): all three in one pass */
        node *d = &m->nodes[i], *a = &m->nodes[d->in0];
        if (d->op == OP_MAXPOOL && (a->op == OP_RELU || a->op == OP_RELU6) && a->transient && a->refs == 1 &&
            d->in0 >= first && m->nodes[a->in0].op == OP_BN && m->nodes[a->in0].fused)
            a->fused = true;
    }
    for (int i = first; i <= last; i++) {
        node *d = &m->nodes[i];
        if (d->op == OP_BN) { /* statistics (or the running ones) into scale and shift */
            const node *a = &m->nodes[d->in0];
            int rows = n * d->h * d->w;
            if (training && !d->bn_frozen) {
                batchnorm_train_stats(rows, d->c, a->y, net_param(m, d->p_w), net_param(m, d->p_b), d->eps,
                                      d->momentum, net_param(m, d->p_mean), net_param(m, d->p_var), d->save_mean,
                                      d->save_invstd, d->scale, d->shift);
                d->tracked++;
            } else {
                batchnorm_eval_scale_shift(d->c, net_param(m, d->p_w), net_param(m, d->p_b), net_param(m, d->p_mean),
                                           net_param(m, d->p_var), d->eps, d->scale, d->shift);
            }
        }
        if (compute(m, i, training) < 0) return NULL;
        /* inputs whose last consumer this was give their buffers back (in eval mode every pooled
         * one: no backward will read it; in training the transient ones, which backward
         * recomputes); a fused batch norm's input is read by the batch norm's consumer, so it is
         * released there */
        if (d->fused) continue;
        int ins[2] = {d->in0, d->op == OP_ADD ? d->in1 : -1};
        for (int k = 0; k < 2; k++) {
            if (ins[k] < 0) continue;
            node *a = &m->nodes[ins[k]];
            while (a->fused) a = &m->nodes[a->in0];
            if (--a->refs == 0 && (a->transient || !training)) drop_y(m, a);
        }
    }
    return m->nodes[last].y;
}

/* ---------------------------------------------------------------- backward */

/* makes a transient node's output present again (recomputed from kept inputs) */
static const float *value(net *m, int i) {
    node *d = &m->nodes[i];
    if (d->y) return d->y;
    if (!d->transient) {
        sn_error("node %d: its output is needed but was not computed", i);
        return NULL;
    }
    const int n = m->batch;
    if (d->op == OP_CONV) { /* of the network input */
        const float *x = value(m, d->in0);
        if (!x || take_y(m, d) < 0) return NULL;
        conv2d_forward(&d->conv, n, x, net_param(m, d->p_w), d->p_b >= 0 ? net_param(m, d->p_b) : NULL, d->y);
    } else if (d->op == OP_BN) {
        const float *x = value(m, d->in0);
        if (!x || take_y(m, d) < 0) return NULL;
        batchnorm_apply(n * d->h * d->w, d->c, x, d->scale, d->shift, NULL, 0, d->y);
    } else { /* ReLU, ReLU6 */
        node *a = &m->nodes[d->in0];
        if (d->conv_in) { /* with its convolution (of the network input: the stem) */
            const float *x = value(m, a->in0);
            if (!x || take_y(m, d) < 0) return NULL;
            conv_desc cd = a->conv;
            cd.act = act_of(d->op);
            conv2d_forward(&cd, n, x, net_param(m, a->p_w), a->p_b >= 0 ? net_param(m, a->p_b) : NULL, d->y);
        } else if (a->op == OP_BN && !a->y) { /* fused: from the batch norm's input */
            const float *x = value(m, a->in0);
            if (!x || take_y(m, d) < 0) return NULL;
            batchnorm_apply(n * d->h * d->w, d->c, x, a->scale, a->shift, NULL, act_of(d->op), d->y);
        } else {
            const float *x = value(m, d->in0);
            if (!x || take_y(m, d) < 0) return NULL;
            if (d->op == OP_RELU) eltwise_relu_forward((size_t)n * node_size(d), x, d->y);
            else eltwise_relu6_forward((size_t)n * node_size(d), x, d->y);
        }
    }
    return d->y;
}

/* node i's activation gradient buffer, zeroed when first taken (backward passes accumulate) */
static float *grad_buf(net *m, int i) {
    node *d = &m->nodes[i];
    if (!d->dy) {
        size_t cnt = (size_t)m->batch * node_size(d);
        d->dy = pool_get(m, cnt);
        if (d->dy) memset(d->dy, 0, cnt * sizeof(float));
    }
    return d->dy;
}

void net_freeze_weights(net *m) {
    static unsigned long next;
    m->wkey = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED); /* unique in the process: never reused */
}

void net_set_conv_algo(net *m, int algo) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_CONV) m->nodes[i].conv.algo = algo;
}

void net_zero_grad(net *m) { memset(m->grad, 0, m->n_floats * sizeof(float)); }

#define NEED(p) do { if (!(p)) goto oom; } while (0)

/* hands node i's gradient buffer to node `to` when `to` has none yet (its contents become
 * `to`'s gradient; an in-place transform may follow); false if `to` already has one */
static bool hand_over(net *m, node *d, int to) {
    node *t = &m->nodes[to];
    if (t->dy) return false;
    t->dy = d->dy;
    d->dy = NULL;
    return true;
}

/* adds node i's gradient into node `to`'s (a copy when `to` has none yet) */
static int give(net *m, const node *d, int to, size_t cnt) {
    node *t = &m->nodes[to];
    if (t->dy) {
        eltwise_axpy(cnt, 1.0f, d->dy, t->dy);
        return 0;
    }
    t->dy = pool_get(m, cnt);
    if (!t->dy) return -1;
    memcpy(t->dy, d->dy, cnt * sizeof(float));
    return 0;
}

/* batch norm node b's backward in place on buffer g (d loss / d act(bn) on entry) */
static void bn_inplace(net *m, node *b, int act, const float *x, float *g) {
    bool train = m->training && !b->bn_frozen;
    float *dw = trainable(m, b->p_w) ? net_grad(m, b->p_w) : NULL;
    float *db = trainable(m, b->p_b) ? net_grad(m, b->p_b) : NULL;
    batchnorm_act_backward(train, m->batch * b->h * b->w, b->c, x, b->scale, b->shift, act, net_param(m, b->p_w),
                           train ? b->save_mean : net_param(m, b->p_mean),
                           train ? b->save_invstd : net_param(m, b->p_var), b->eps, g, dw, db);
}

/* max pool d of ReLU(batch norm(x)) where x is a pooled output with no other reader: the
 * backward of all three in place over x's buffer, which becomes x's gradient (no buffer the size
 * of x is needed).  1 done, 0 not applicable (or out of memory: the plain path follows). */
static int maxpool_fused_backward(net *m, node *d) {
    node *a = &m->nodes[d->in0];
    if (!(a->op == OP_RELU || a->op == OP_RELU6) || a->refs != 1 || a->dy || a->y) return 0;
    node *b = &m->nodes[a->in0];
    if (b->op != OP_BN || b->refs != 1 || b->dy || b->y) return 0;
    node *x = &m->nodes[b->in0];
    if (!x->y && x->transient && !value(m, b->in0)) return 0; /* a recomputed stem */
    if (!x->pooled_y || x->refs != 1 || x->dy) return 0;
    const int c = b->c;
    bool train = m->training && !b->bn_frozen;
    double *mu = sn_alloc(sizeof(double) * 2 * c, "batchnorm backward");
    if (!mu) return 0;
    for (int j = 0; j < c; j++) {
        mu[j] = train ? b->save_mean[j] : net_param(m, b->p_mean)[j];
        mu[c + j] = train ? b->save_invstd[j] : 1.0 / sqrt((double)net_param(m, b->p_var)[j] + b->eps);
    }
    float *dw = trainable(m, b->p_w) ? net_grad(m, b->p_w) : NULL;
    float *db = trainable(m, b->p_b) ? net_grad(m, b->p_b) : NULL;
    int rc = maxpool_bn_act_backward(&d->pool, m->batch, d->dy, d->argmax, act_of(a->op), b->scale, b->shift, mu,
                                     mu + c, train, net_param(m, b->p_w), x->y, dw, db);
    sn_free(mu);
    if (rc < 0) return 0;
    x->dy = x->y; /* the buffer now holds d loss / d x */
    x->y = NULL;
    x->pooled_y = false;
    a->need_dy = b->need_dy = false; /* done */
    return 1;
}

#define NEED(p) do { if (!(p)) goto oom; } while (0)

int net_backward(net *m, const float *dout) {
    const int n = m->batch;
    const int last = net_output(m);
    mark_need_dy(m);
    for (int i = 0; i <= last; i++) {
        drop_dy(m, &m->nodes[i]);
        m->nodes[i].refs = 0;
        m->nodes[i].db_done = m->nodes[i].dy_masked = false;
    }
    for (int i = 1; i <= last; i++) { /* consumers of each node */
        m->nodes[m->nodes[i].in0].refs++;
        if (m->nodes[i].op == OP_ADD) m->nodes[m->nodes[i].in1].refs++;
    }
    if (!m->nodes[last].need_dy) return 0;
    NEED(m->nodes[last].dy = pool_get(m, (size_t)n * node_size(&m->nodes[last])));
    memcpy(m->nodes[last].dy, dout, (size_t)n * node_size(&m->nodes[last]) * sizeof(float));
    for (int i = last; i >= 1; i--) {
        node *d = &m->nodes[i];
        if (!d->need_dy || !d->dy) goto done; /* nothing flows here */
        node *a = &m->nodes[d->in0];
        float *dw = trainable(m, d->p_w) ? net_grad(m, d->p_w) : NULL;
        float *db = trainable(m, d->p_b) ? net_grad(m, d->p_b) : NULL;
        const size_t cnt = (size_t)n * node_size(d);
        switch (d->op) {
        case OP_CONV: {
            if (d->db_done) db = NULL;
            if (dw || db) {
                const float *x = value(m, d->in0);
                NEED(x);
                conv2d_backward_weights(&d->conv, n, x, d->dy, dw, db);
                if (a->transient) drop_y(m, a); /* recomputed if needed again */
            }
            if (a->need_dy && a->dy) {
                conv2d_backward_data(&d->conv, n, d->dy, net_param(m, d->p_w), a->dy);
            } else if (a->need_dy) { /* first gradient to reach the input: written, not added */
                NEED(a->dy = pool_get(m, (size_t)n * node_size(a)));
                if (conv_is_depthwise(&d->conv) && a->conv_in && a->refs == 1 && !a->transient) {
                    /* a depthwise convolution of a fused ReLU's output, its only reader: the ReLU's
                     * mask (from that output, its input here) applied to each row as it is written */
                    const float *x = value(m, d->in0);
                    NEED(x);
                    conv2d_backward_data_masked_set(&d->conv, n, d->dy, net_param(m, d->p_w), a->dy,
                                                    act_of(a->op), x);
                    a->dy_masked = true;
                } else {
                    conv2d_backward_data_set(&d->conv, n, d->dy, net_param(m, d->p_w), a->dy);
                }
            }
            break;
        }
        case OP_RELU:
        case OP_RELU6: {
            int act = act_of(d->op);
            if (a->op == OP_BN && a->refs == 1 && !a->dy) {
                /* ReLU and its batch norm in one in-place pass; the result is the BN input's */
                node *x = &m->nodes[a->in0];
                const float *xv = value(m, a->in0);
                NEED(xv);
                if (a->need_dy) {
                    bn_inplace(m, a, act, xv, d->dy);
                    if (x->need_dy && !hand_over(m, d, a->in0)) eltwise_axpy(cnt, 1.0f, d->dy, x->dy);
                }
                if (x->transient) drop_y(m, x);
                a->need_dy = false; /* done */
            } else if (a->need_dy) {
                if (!a->dy) {
                    /* the mask from the activation's input, or from its output when the convolution
                     * applied it (the same mask: see conv.h) */
                    const float *xv = value(m, d->conv_in ? i : d->in0);
                    NEED(xv);
                    int mask = d->dy_masked ? ACT_NONE : act; /* else its reader masked it */
                    if (d->conv_in && !conv_is_depthwise(&a->conv)) { /* with the dense convolution's bias gradient, in one pass */
                        float *dbc = trainable(m, a->p_b) ? net_grad(m, a->p_b) : NULL;
                        act_backward((long)n * d->h * d->w, d->c, mask, xv, d->dy, dbc);
                        a->db_done = dbc != NULL;
                    } else if (mask) {
                        act_mask(cnt, act, xv, d->dy);
                    }
                    hand_over(m, d, d->in0);
                    if (a->transient) drop_y(m, a);
                } else {
                    const float *y = value(m, i);
                    NEED(y);
                    if (act == 1) eltwise_relu_backward(cnt, y, d->dy, a->dy);
                    else eltwise_relu6_backward(cnt, y, d->dy, a->dy);
                }
            }
            break;
        }
        case OP_BN: {
            if (!a->need_dy && !dw && !db) break;
            const float *x = value(m, d->in0);
            NEED(x);
            if (!a->need_dy || !a->dy) {
                bn_inplace(m, d, 0, x, d->dy);
                if (a->need_dy) hand_over(m, d, d->in0);
            } else if (m->training && !d->bn_frozen) {
                batchnorm_backward_train(n * d->h * d->w, d->c, x, d->dy, net_param(m, d->p_w), d->save_mean,
                                         d->save_invstd, a->dy, dw, db);
            } else {
                batchnorm_backward_eval(n * d->h * d->w, d->c, x, d->dy, net_param(m, d->p_w), net_param(m, d->p_mean),
                                        net_param(m, d->p_var), d->eps, a->dy, dw, db);
            }
            if (a->transient) drop_y(m, a);
            break;
        }
        case OP_ADD:
            if (m->nodes[d->in1].need_dy) NEED(give(m, d, d->in1, cnt) == 0);
            if (a->need_dy && !hand_over(m, d, d->in0)) eltwise_axpy(cnt, 1.0f, d->dy, a->dy);
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL:
        case OP_GAP:
        case OP_CONCATPOOL: {
            if (!a->need_dy) break;
            if (d->op == OP_MAXPOOL && maxpool_fused_backward(m, d) == 1) break;
            float *dx = grad_buf(m, d->in0);
            NEED(dx);
            if (d->op == OP_MAXPOOL) maxpool_backward(&d->pool, n, d->dy, d->argmax, dx);
            else if (d->op == OP_AVGPOOL) avgpool_backward(&d->pool, n, d->dy, dx);
            else if (d->op == OP_GAP) global_avgpool_backward(n, a->h * a->w, a->c, d->dy, dx);
            else concatpool_backward(n, a->h * a->w, a->c, d->dy, d->argmax, dx);
            break;
        }
        case OP_FLATTEN:
            if (a->need_dy && !hand_over(m, d, d->in0)) eltwise_axpy(cnt, 1.0f, d->dy, a->dy);
            break;
        case OP_LINEAR: {
            const float *x = dw ? value(m, d->in0) : a->y;
            if (dw) NEED(x);
            float *dx = NULL;
            if (a->need_dy) NEED(dx = grad_buf(m, d->in0));
            linear_backward(n, a->c, d->c, x, net_param(m, d->p_w), d->dy, dx, dw, db);
            if (a->transient) drop_y(m, a);
            break;
        }
        case OP_DROPOUT:
            if (!a->need_dy) break;
            if (!(m->training && d->p > 0)) {
                if (!hand_over(m, d, d->in0)) eltwise_axpy(cnt, 1.0f, d->dy, a->dy);
            } else if (!a->dy) {
                eltwise_dropout_backward_set(cnt, d->p, d->mask, d->dy);
                hand_over(m, d, d->in0);
            } else {
                eltwise_dropout_backward(cnt, d->p, d->mask, d->dy, a->dy);
            }
            break;
        case OP_INPUT: break;
        }
    done:
        /* nothing at or above i needs its gradient or its output any more: both go back to the
         * pool, where the gradients of the nodes below take them */
        drop_dy(m, d);
        drop_y(m, d);
    }
    drop_dy(m, &m->nodes[0]);
    mark_need_dy(m); /* fused batch norms were marked done */
    return 0;
oom: /* out of memory for a buffer: the gradients are incomplete */
    for (int i = 0; i <= last; i++) {
        drop_dy(m, &m->nodes[i]);
        drop_y(m, &m->nodes[i]);
    }
    mark_need_dy(m);
    return sn_error_prefix("backward pass (gradients incomplete)");
}

double net_macs(const net *m) {
    double macs = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        if (d->op == OP_CONV) macs += conv2d_macs(&d->conv, 1);
        else if (d->op == OP_LINEAR) macs += (double)m->nodes[d->in0].c * d->c;
    }
    return macs;
}
