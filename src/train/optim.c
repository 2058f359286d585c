/* optim.c - SGD, Adam, AdamW on the parameter arena (see optim.h). */
#include "train/optim.h"
#include <math.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

optim *optim_create(const net *m, optim_kind kind, float lr, float wd) {
    optim *o = calloc(1, sizeof *o);
    if (!o) {
        sn_error("out of memory creating the optimiser");
        return NULL;
    }
    o->kind = kind;
    for (int g = 0; g < OPTIM_MAX_GROUPS; g++) o->lr[g] = lr;
    o->momentum = 0.9f;
    o->beta2 = 0.99f;
    o->eps = 1e-8f;
    o->wd = wd;
    o->bn_wd = true;
    o->n_floats = m->n_floats;
    o->n_params = m->n_params;
    o->m = sn_calloc(m->n_floats * sizeof(float), "optimiser state");
    o->v = kind == OPT_SGD ? NULL : sn_calloc(m->n_floats * sizeof(float), "optimiser state");
    o->t = calloc((size_t)m->n_params + 1, sizeof(int64_t));
    if (!o->m || (kind != OPT_SGD && !o->v) || !o->t) {
        optim_free(o);
        sn_error("out of memory for optimiser state (%zu floats)", m->n_floats);
        return NULL;
    }
    return o;
}

void optim_free(optim *o) {
    if (!o) return;
    sn_free(o->m);
    sn_free(o->v);
    free(o->t);
    free(o);
}

void optim_set_lr(optim *o, float lr) {
    for (int g = 0; g < OPTIM_MAX_GROUPS; g++) o->lr[g] = lr;
}

void optim_set_lrs(optim *o, const float *lrs, int n) {
    for (int g = 0; g < OPTIM_MAX_GROUPS; g++) o->lr[g] = lrs[g < n ? g : n - 1];
}

void optim_set_momentum(optim *o, float momentum) { o->momentum = momentum; }

void optim_set_bn_wd(optim *o, bool bn_wd) { o->bn_wd = bn_wd; }

optim *optim_clone(const optim *o) {
    optim *c = malloc(sizeof *c);
    if (!c) {
        sn_error("out of memory copying the optimiser");
        return NULL;
    }
    *c = *o;
    c->m = sn_alloc(o->n_floats * sizeof(float), "optimiser state");
    c->v = o->v ? sn_alloc(o->n_floats * sizeof(float), "optimiser state") : NULL;
    c->t = malloc(((size_t)o->n_params + 1) * sizeof(int64_t));
    if (!c->m || (o->v && !c->v) || !c->t) {
        optim_free(c);
        sn_error("out of memory copying the optimiser state (%zu floats)", o->n_floats);
        return NULL;
    }
    optim_copy_state(c, o);
    return c;
}

void optim_copy_state(optim *dst, const optim *src) {
    memcpy(dst->m, src->m, src->n_floats * sizeof(float));
    if (dst->v && src->v) memcpy(dst->v, src->v, src->n_floats * sizeof(float));
    memcpy(dst->t, src->t, ((size_t)src->n_params + 1) * sizeof(int64_t));
}

const char *optim_name(optim_kind k) { return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw"; }

int optim_parse(const char *name, optim_kind *k) {
    if (!strcmp(name, "sgd")) *k = OPT_SGD;
    else if (!strcmp(name, "adam")) *k = OPT_ADAM;
    else if (!strcmp(name, "adamw")) *k = OPT_ADAMW;
    else return sn_error("unknown optimiser '%s' (sgd, adam, adamw)", name);
    return 0;
}

/* batch-norm parameters and biases: exempt from weight decay when bn_wd is false */
static bool no_decay(const net *m, const param *p) {
    if (p->ndim == 1 && strstr(p->name, ".bias")) return true;
    return m->nodes[p->node].op == OP_BN;
}

/* one Adam / AdamW step's constants: betas, eps, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), the L2
 * coefficient (Adam's weight decay) and the decoupled decay factor (AdamW's 1 - lr*wd) */
typedef struct {
    float b1, b2, eps, step, rbc2, l2, decay;
} adam_coef;

/* element j of an Adam step, in fused multiply-adds, as adam_update's vector lanes compute it */
static inline void adam_one(const adam_coef *k, float *w, const float *g, float *m, float *v) {
    float d = fmaf(k->l2, *w, *g);
    float mj = fmaf(k->b1, *m, (1 - k->b1) * d);
    float vj = fmaf(k->b2, *v, (1 - k->b2) * d * d);
    *m = mj;
    *v = vj;
    *w = fmaf(*w, k->decay, -(k->step * mj / fmaf(sqrtf(vj), k->rbc2, k->eps)));
}

/* w, m, v [n] updated by one Adam step from the gradient g: blocks of 8 in AVX2 (the same
 * operations, IEEE sqrt and division: bitwise what adam_one gives), the rest by adam_one, so each
 * element's result does not depend on the thread split */
static void adam_update(const adam_coef *k, long n, float *w, const float *g, float *m, float *v) {
    long nv = 0;
#if defined(__AVX2__) && defined(__FMA__)
    nv = n / 8;
    const __m256 b1 = _mm256_set1_ps(k->b1), b2 = _mm256_set1_ps(k->b2), c1 = _mm256_set1_ps(1 - k->b1),
                 c2 = _mm256_set1_ps(1 - k->b2), eps = _mm256_set1_ps(k->eps), step = _mm256_set1_ps(k->step),
                 rbc2 = _mm256_set1_ps(k->rbc2), l2 = _mm256_set1_ps(k->l2), decay = _mm256_set1_ps(k->decay);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long b = 0; b < nv; b++) {
        const long j = 8 * b;
        __m256 wv = _mm256_loadu_ps(w + j);
        __m256 d = _mm256_fmadd_ps(l2, wv, _mm256_loadu_ps(g + j));
        __m256 mj = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + j), _mm256_mul_ps(c1, d));
        __m256 vj = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + j), _mm256_mul_ps(_mm256_mul_ps(c2, d), d));
        _mm256_storeu_ps(m + j, mj);
        _mm256_storeu_ps(v + j, vj);
        __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(vj), rbc2, eps);
        __m256 upd = _mm256_div_ps(_mm256_mul_ps(step, mj), den);
        _mm256_storeu_ps(w + j, _mm256_fmadd_ps(wv, decay, _mm256_xor_ps(upd, _mm256_set1_ps(-0.0f))));
    }
    nv *= 8;
#endif
#pragma omp parallel for schedule(static) if (n - nv > 65536)
    for (long j = nv; j < n; j++) adam_one(k, w + j, g + j, m + j, v + j);
}

void optim_step(optim *o, net *m) {
    m->wkey = 0; /* the parameters change: no kept copies of them any more (net_freeze_weights) */
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (p->buffer || p->frozen) continue;
        int g = p->group < OPTIM_MAX_GROUPS ? p->group : OPTIM_MAX_GROUPS - 1;
        const float lr = o->lr[g];
        const float wd = (!o->bn_wd && no_decay(m, p)) ? 0.0f : o->wd;
        float *w = m->data + p->off, *gr = m->grad + p->off, *mm = o->m + p->off;
        const long n = (long)p->numel;
        const int64_t t = ++o->t[i];
        if (o->kind == OPT_SGD) {
            const float mu = o->momentum;
            const bool first = t == 1;
#pragma omp parallel for schedule(static) if (n > 65536)
            for (long j = 0; j < n; j++) {
                float d = gr[j] + wd * w[j];
                float b = mu > 0 ? (first ? d : mu * mm[j] + d) : d;
                mm[j] = b;
                w[j] -= lr * b;
            }
        } else {
            const float b1 = o->momentum, b2 = o->beta2, eps = o->eps;
            const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
            const adam_coef k = {b1, b2, eps, (float)(lr / bc1), (float)(1.0 / sqrt(bc2)),
                                 o->kind == OPT_ADAM ? wd : 0.0f, o->kind == OPT_ADAMW ? 1.0f - lr * wd : 1.0f};
            adam_update(&k, n, w, gr, mm, o->v + p->off);
        }
    }
}
