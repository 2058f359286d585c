/* net_buffers.c - the activation buffers of a network (see net.h, "Memory"): sizing, kept
 * outputs, and the pool that transient outputs and activation gradients borrow from. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "core/error.h"
#include "nn/net_internal.h"

/* ---------------------------------------------------------------- the pool */

/* The pool: activation buffers borrowed and given back during forward and backward.
 * All of them are pieces of one arena, a large address-space reservation (MAP_NORESERVE) that is
 * resident only where touched; net_pool_get takes the best-fitting free piece (split when it is at
 * least POOL_SPLIT floats larger, the rest stays free), else extends the top of the arena, and
 * net_pool_put merges a freed piece with its free neighbours.  So a freed buffer serves any later
 * request that fits in it or in the free space around it, and the resident size is the highest
 * top ever reached, close to the largest live total.  Shapes repeat from step to step, so the
 * pool settles after the first step.  If the reservation is exhausted, pieces become allocations
 * of their own ("own"). */
#define POOL_SPLIT ((size_t)64)        /* floats: smaller rests stay with the piece */
#define POOL_RESERVE ((size_t)1 << 34) /* 64 GiB of address space, in floats */

/* room for one more entry in the list of pieces */
static int pool_grow(net *m) {
    if (m->n_pool < m->cap_pool) return 0;
    int cap = m->cap_pool ? 2 * m->cap_pool : 16;
    net_block *nb = realloc(m->pool, sizeof(net_block) * (size_t)cap);
    if (!nb) return sn_error("out of memory for activation buffers");
    m->pool = nb;
    m->cap_pool = cap;
    return 0;
}

float *net_pool_get(net *m, size_t n) {
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

void net_pool_put(net *m, float *p) {
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

/* frees the pool's pieces and its arena */
static void pool_free_all(net *m) {
    for (int i = 0; i < m->n_pool; i++)
        if (m->pool[i].own) sn_free(m->pool[i].p);
    if (m->arena) munmap(m->arena, m->arena_cap * sizeof(float));
    m->arena = NULL;
    m->arena_cap = m->arena_top = 0;
    free(m->pool);
    m->pool = NULL;
    m->n_pool = m->cap_pool = 0;
}

/* ---------------------------------------------------------------- node buffers */

int net_take_y(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (r->y) return 0;
    r->y = net_pool_get(m, (size_t)m->batch * node_size(&m->nodes[i]));
    if (!r->y) return -1;
    r->pooled_y = true;
    return 0;
}

void net_drop_y(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (r->pooled_y) {
        net_pool_put(m, r->y);
        r->y = NULL;
    }
    r->pooled_y = false;
}

void net_drop_dy(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (r->dy) net_pool_put(m, r->dy);
    r->dy = NULL;
}

/* frees node i's buffers (the plan stays) */
static void free_runtime(net *m, int i) {
    struct node_run *r = &m->run[i];
    if (!r->pooled_y) sn_free(r->y);
    sn_free(r->save_mean); sn_free(r->save_invstd); sn_free(r->scale); sn_free(r->shift);
    sn_free(r->argmax); sn_free(r->mask);
    r->y = r->dy = r->save_mean = r->save_invstd = r->scale = r->shift = NULL;
    r->pooled_y = false;
    r->argmax = NULL;
    r->mask = NULL;
}

void net_buffers_free(net *m) {
    for (int i = 0; i < m->n_nodes; i++) free_runtime(m, i);
    pool_free_all(m);
}

/* the buffers of node i for n images that live from net_set_batch on: a persistent output, batch
 * statistics, pooling indices, a dropout or drop-path mask */
static int alloc_node(net *m, int i, int n) {
    const node *d = &m->nodes[i];
    struct node_run *r = &m->run[i];
    size_t sz = (size_t)n * node_size(d);
    if (node_persists(m, i)) {
        r->y = sn_alloc(sz * sizeof(float), "activations");
        if (!r->y) return -1;
    }
    if (d->op == OP_BN) {
        r->save_mean = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        r->save_invstd = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        r->scale = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        r->shift = sn_alloc((size_t)d->c * sizeof(float), "batch-norm statistics");
        if (!r->save_mean || !r->save_invstd || !r->scale || !r->shift) return -1;
    } else if (d->op == OP_MAXPOOL || d->op == OP_CONCATPOOL) {
        r->argmax = sn_alloc(sz * sizeof(int32_t), "pooling indices");
        if (!r->argmax) return -1;
    } else if (d->op == OP_DROPOUT) {
        r->mask = sn_alloc(sz, "dropout mask");
        if (!r->mask) return -1;
    } else if (d->op == OP_DROPPATH) {
        r->mask = sn_alloc((size_t)n, "drop-path mask");
        if (!r->mask) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- public */

int net_set_batch(net *m, int n) {
    if (n <= 0) return sn_error("batch size %d", n);
    if (n <= m->cap_batch) {
        m->batch = n;
        return 0;
    }
    net_buffers_free(m);
    m->batch = m->cap_batch = 0;
    net_plan(m);
    for (int i = 0; i < m->n_nodes; i++)
        if (alloc_node(m, i, n) < 0) return -1;
    m->batch = m->cap_batch = n;
    return 0;
}

int net_keep(net *m, int i) {
    if (i < 0 || i >= m->n_nodes) return sn_error("net_keep: no node %d", i);
    struct node_run *r = &m->run[i];
    m->nodes[i].keep = true;
    net_plan(m);
    if (m->cap_batch > 0 && (r->pooled_y || !r->y)) {
        net_drop_y(m, i);
        r->y = sn_alloc((size_t)m->cap_batch * node_size(&m->nodes[i]) * sizeof(float), "activations");
        if (!r->y) return -1;
    }
    return 0;
}

float *net_node_y(net *m, int i) {
    if (i < 0 || i >= m->n_nodes || !m->nodes[i].keep) return NULL;
    return m->run[i].y;
}

unsigned net_node_state(const net *m, int i) {
    if (!m || i < 0 || i >= m->n_nodes) return 0;
    const struct node_run *r = &m->run[i];
    return (r->y ? NET_NODE_HOLDS_Y : 0u) | (r->pooled_y ? NET_NODE_POOLED_Y : 0u) |
           (r->transient ? NET_NODE_TRANSIENT : 0u) | (r->fused ? NET_NODE_FUSED : 0u) |
           (r->conv_in ? NET_NODE_CONV_ACT : 0u) | (r->need_dy ? NET_NODE_NEEDS_GRAD : 0u);
}
