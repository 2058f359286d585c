/* learner.c - phases of training, validation with TTA, LR finder, checkpoints (see learner.h). */
#include "train/learner.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/rng.h"
#include "io/plot.h"
#include "io/safetensors.h"
#include "io/state.h"
#include "kernels/loss.h"
#include "classifier/metrics.h"
#include "train/schedule.h"

struct learner {
    bool step_failed;           /* a training step ran out of memory (sn_error says so) */
    classifier *model;
    net *net;
    dataset *ds;
    ds_split split;
    learner_opts o;
    optim *opt;
    loader *train_aug, *train_plain, *valid, *tta;
    float *x, *t, *dl, *dl2, *probs;
    float *xmix, *tmix;         /* mixup: the batch before blending */
    size_t xmix_floats;
    bool soft;                  /* the batch's targets are soft (mixup): single-label uses CE on them */
    int *y;
    size_t x_floats;            /* capacity of x */
    int C;                      /* classes */
    bool multi;
    int n_groups, bounds[9];
    long iter;                  /* optimiser steps so far */
    int epoch;                  /* epochs completed (all phases) */
    int phase_idx;              /* learner_fit calls so far */
    int cur_phase;              /* index of the phase being trained */
    int resume_phase, resume_epoch; /* from a checkpoint: epochs done in that phase */
    cJSON *history, *notes;
    double seconds;
    FILE *hist;                 /* run_dir/history.jsonl */
    /* precompute */
    int cache_node;             /* node whose output is cached (-1: not possible) */
    size_t cache_dim;
    float *feat_train, *feat_valid;
    int feat_size;              /* image size the features were computed at (0: none) */
    bool table_header;
};

learner_opts learner_defaults(void) {
    learner_opts o = {.batch = 32, .seed = 42, .opt = OPT_ADAMW, .wd = 1e-2f, .bn_wd = true, .freeze_bn = false,
                      .n_threads = 2, .thresh = 0.2f, .beta = 2.0f, .run_dir = NULL, .quiet = false, .progress = true};
    aug_defaults(&o.aug);
    return o;
}

static double now(void) { return omp_get_wtime(); }

/* the node whose output feeds the head: the input of the first group-2 node with parameters,
 * provided no later node reads anything before it */
static int find_cache_node(const net *m) {
    int first = -1;
    for (int i = 1; i < m->n_nodes && first < 0; i++)
        if (m->nodes[i].group == 2 && m->nodes[i].p_w >= 0) first = i;
    if (first < 0) return -1;
    int c = m->nodes[first].in0;
    for (int i = c + 1; i < m->n_nodes; i++)
        if (m->nodes[i].in0 < c || (m->nodes[i].in1 >= 0 && m->nodes[i].in1 < c)) return -1;
    for (int i = 1; i <= c; i++) /* everything up to the cache must be body */
        if (m->nodes[i].group >= 2 && (m->nodes[i].p_w >= 0 || m->nodes[i].op == OP_DROPOUT)) return -1;
    return c;
}

learner *learner_create(classifier *model, dataset *ds, const ds_split *split, const learner_opts *o) {
    if (model->n_classes != ds->n_classes) {
        sn_error("the model has %d outputs but the data set has %d classes", model->n_classes, ds->n_classes);
        return NULL;
    }
    learner *l = calloc(1, sizeof *l);
    if (!l) {
        sn_error("out of memory");
        return NULL;
    }
    l->model = model;
    l->net = model->net;
    l->ds = ds;
    l->split = *split;
    l->o = o ? *o : learner_defaults();
    l->C = ds->n_classes;
    l->multi = ds->kind == DS_MULTI;
    /* label groups must be contiguous runs of classes to be scored per group */
    if (ds->n_groups > 1 && ds->n_groups <= 8) {
        l->n_groups = ds->n_groups;
        int g = 0;
        l->bounds[0] = 0;
        for (int c = 1; c < ds->n_classes; c++)
            if (ds->group[c] != ds->group[c - 1]) {
                if (ds->group[c] != g + 1) l->n_groups = 0;
                l->bounds[++g] = c;
            }
        l->bounds[l->n_groups ? l->n_groups : 0] = ds->n_classes;
        if (g + 1 != ds->n_groups) l->n_groups = 0;
    }
    l->opt = optim_create(l->net, l->o.opt, 1e-3f, l->o.wd);
    l->history = cJSON_CreateArray();
    l->notes = cJSON_CreateObject();
    l->cache_node = find_cache_node(l->net);
    if (l->cache_node >= 0 && net_keep(l->net, l->cache_node) < 0) l->cache_node = -1;
    l->resume_phase = -1;
    if (!l->opt || !l->history || !l->notes) {
        learner_free(l);
        return NULL;
    }
    l->opt->bn_wd = l->o.bn_wd;
    if (l->o.run_dir) {
        mkdir(l->o.run_dir, 0777);
        char p[4096];
        snprintf(p, sizeof p, "%s/history.jsonl", l->o.run_dir);
        l->hist = fopen(p, "w");
        if (!l->hist) {
            sn_error("%s: cannot write the training history: %m", p);
            learner_free(l);
            return NULL;
        }
    }
    return l;
}

void learner_free(learner *l) {
    if (!l) return;
    optim_free(l->opt);
    loader_free(l->train_aug);
    loader_free(l->train_plain);
    loader_free(l->valid);
    loader_free(l->tta);
    free(l->x); free(l->t); free(l->dl); free(l->dl2); free(l->probs); free(l->xmix); free(l->tmix); free(l->y);
    free(l->feat_train); free(l->feat_valid);
    cJSON_Delete(l->history);
    cJSON_Delete(l->notes);
    if (l->hist) fclose(l->hist);
    free(l);
}

void learner_set_note(learner *l, const char *key, double value) {
    cJSON_DeleteItemFromObject(l->notes, key);
    cJSON_AddNumberToObject(l->notes, key, value);
}

bool learner_get_note(const learner *l, const char *key, double *value) {
    const cJSON *v = cJSON_GetObjectItem(l->notes, key);
    if (!cJSON_IsNumber(v)) return false;
    *value = v->valuedouble;
    return true;
}

double learner_seconds(const learner *l) { return l->seconds; }

char *learner_history_json(const learner *l) { return cJSON_PrintUnformatted(l->history); }

static void log_json(learner *l, cJSON *row, bool keep) {
    if (l->hist) {
        char *s = cJSON_PrintUnformatted(row);
        if (s) fprintf(l->hist, "%s\n", s);
        free(s);
        fflush(l->hist);
    }
    if (keep) cJSON_AddItemToArray(l->history, row);
    else cJSON_Delete(row);
}

/* buffers for batches of `size`, and the net's input at that size (progressive resizing) */
static int ensure_buffers(learner *l, int size) {
    if (l->net->nodes[0].h != size || l->net->nodes[0].w != size) {
        if (net_set_input_size(l->net, size, size) < 0) return -1;
    }
    size_t need = (size_t)l->o.batch * size * size * 3;
    if (need > l->x_floats) {
        free(l->x);
        l->x = malloc(need * sizeof(float));
        l->x_floats = need;
    }
    if (!l->t) {
        l->t = malloc(sizeof(float) * (size_t)l->o.batch * l->C);
        l->dl = malloc(sizeof(float) * (size_t)l->o.batch * l->C);
        l->dl2 = malloc(sizeof(float) * (size_t)l->o.batch * l->C);
        l->y = malloc(sizeof(int) * (size_t)l->o.batch);
    }
    if (!l->x || !l->t || !l->dl || !l->dl2 || !l->y) return sn_error("out of memory for batches of %d images", l->o.batch);
    return net_set_batch(l->net, l->o.batch);
}

/* a loader over idx (train or valid), created on first use, moved to `size` and `epoch` */
static loader *get_loader(learner *l, loader **slot, const int *idx, int n, bool augment, bool train, int size,
                          int epoch) {
    if (!*slot) {
        loader_opts lo = loader_defaults();
        lo.size = size;
        lo.batch = l->o.batch;
        lo.augment = augment;
        lo.aug = l->o.aug;
        memcpy(lo.mean, l->model->mean, sizeof lo.mean);
        memcpy(lo.std, l->model->std, sizeof lo.std);
        lo.seed = l->o.seed;
        lo.shuffle = train;
        lo.drop_last = train;
        lo.n_threads = l->o.n_threads;
        *slot = loader_create(l->ds, idx, n, &lo);
        if (!*slot) return NULL;
    }
    if (loader_set_size(*slot, size) < 0) return NULL;
    if (loader_epoch(*slot) != epoch && loader_set_epoch(*slot, epoch) < 0) return NULL;
    return *slot;
}

static float batch_loss(learner *l, int n, const float *logits, float *dl) {
    if (!l->multi && l->soft) { /* mixed targets: cross-entropy with class probabilities */
        const int whole[2] = {0, l->C};
        return group_softmax_ce_loss(n, l->C, logits, l->t, 1, whole, dl);
    }
    if (!l->multi) return softmax_ce_loss(n, l->C, logits, l->y, dl);
    float loss = sigmoid_bce_loss(n, l->C, logits, l->t, dl);
    if (l->o.group_ce > 0 && l->n_groups > 1) {
        const float w = l->o.group_ce;
        loss += w * group_softmax_ce_loss(n, l->C, logits, l->t, l->n_groups, l->bounds, dl ? l->dl2 : NULL);
        if (dl)
            for (size_t k = 0; k < (size_t)n * l->C; k++) dl[k] += w * l->dl2[k];
    }
    return loss;
}

/* targets of dataset item i into row r of t / y */
static void set_target(learner *l, int r, int item) {
    const uint8_t *h = ds_hot(l->ds, item);
    for (int c = 0; c < l->C; c++) l->t[(size_t)r * l->C + c] = h[c];
    l->y[r] = l->ds->items[item].label;
}

/* label smoothing of the n targets in l->t: multi-label t(1-e) + e/2 for each tag's BCE,
 * single-label t(1-e) + e/C, then trained as soft targets (cross-entropy with probabilities) */
static void smooth_targets(learner *l, int n) {
    const float e = l->o.label_smooth, add = l->multi ? e / 2 : e / (float)l->C;
    for (size_t k = 0; k < (size_t)n * l->C; k++) l->t[k] = l->t[k] * (1 - e) + add;
    if (!l->multi) l->soft = true;
}

/* ---------------------------------------------------------------- precompute */

/* body activations (eval mode) of idx[0..n) at `size` into out[n * cache_dim] */
static int compute_features(learner *l, const int *idx, int n, int size, float *out, loader **slot) {
    loader *ld = get_loader(l, slot, idx, n, false, false, size, 0);
    if (!ld) return -1;
    int got, done = 0;
    while ((got = loader_next(ld, l->x, NULL, NULL)) > 0) {
        net_set_batch(l->net, got);
        if (!net_forward(l->net, l->x, false)) return -1; /* runs the head too; only the cache node is kept */
        memcpy(out + (size_t)done * l->cache_dim, l->net->nodes[l->cache_node].y,
               sizeof(float) * (size_t)got * l->cache_dim);
        done += got;
    }
    net_set_batch(l->net, l->o.batch);
    if (got < 0) return -1;
    if (done != n) return sn_error("precompute: %d of %d images", done, n);
    return 0;
}

static int ensure_features(learner *l, int size) {
    if (l->feat_size == size) return 0;
    if (ensure_buffers(l, size) < 0) return -1;
    const node *c = &l->net->nodes[l->cache_node];
    l->cache_dim = (size_t)c->h * c->w * c->c;
    free(l->feat_train);
    free(l->feat_valid);
    l->feat_train = malloc(sizeof(float) * (size_t)l->split.n_train * l->cache_dim);
    l->feat_valid = malloc(sizeof(float) * ((size_t)l->split.n_valid + 1) * l->cache_dim);
    if (!l->feat_train || !l->feat_valid) return sn_error("out of memory for precomputed activations");
    if (ensure_buffers(l, size) < 0) return -1;
    loader *tmp = NULL;
    int r = compute_features(l, l->split.train, l->split.n_train, size, l->feat_train, &tmp);
    loader_free(tmp);
    if (r < 0) return -1;
    tmp = NULL;
    if (l->split.n_valid && compute_features(l, l->split.valid, l->split.n_valid, size, l->feat_valid, &tmp) < 0) {
        loader_free(tmp);
        return -1;
    }
    loader_free(tmp);
    l->feat_size = size;
    return 0;
}

/* seeded permutation of 0..n-1 for an epoch (Fisher-Yates on counter-based draws) */
static void epoch_perm(uint64_t seed, int epoch, int *perm, int n) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_u64(seed, 0x70726563ull + (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---------------------------------------------------------------- mixup */

/* Gamma(a, 1) from counter-based draws (stream, 0..): Marsaglia & Tsang, boosted for a < 1 */
static double gamma_draw(uint64_t seed, uint64_t stream, double a) {
    uint64_t k = 0;
    double boost = 1;
    if (a < 1) {
        boost = pow(1.0 - rng_uniform(seed, stream, k++), 1.0 / a);
        a += 1;
    }
    const double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (int tries = 0; tries < 1000; tries++) {
        double x = rng_normal(seed, stream, k++), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = 1.0 - rng_uniform(seed, stream, k++);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v * boost;
    }
    return d * boost;
}

/* blends the n images of l->x (size x size x 3) and their targets l->t with a seeded partner:
 * keyed by (seed, optimiser step, row), so a resumed run blends the same way */
static int mixup_batch(learner *l, int n, int size) {
    const size_t per = (size_t)size * size * 3, C = (size_t)l->C;
    if ((size_t)n * per > l->xmix_floats) {
        free(l->xmix);
        l->xmix = malloc(sizeof(float) * (size_t)n * per);
        l->xmix_floats = l->xmix ? (size_t)n * per : 0;
    }
    if (!l->tmix) l->tmix = malloc(sizeof(float) * (size_t)l->o.batch * C);
    int *perm = malloc(sizeof(int) * (size_t)n);
    if (!l->xmix || !l->tmix || !perm) {
        free(perm);
        return sn_error("out of memory for mixup");
    }
    memcpy(l->xmix, l->x, sizeof(float) * (size_t)n * per);
    memcpy(l->tmix, l->t, sizeof(float) * (size_t)n * C);
    const uint64_t seed = l->o.seed, base = 0x6d6978757000000ull + ((uint64_t)l->iter << 20);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_u64(seed, base, (uint64_t)i) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < n; i++) {
        double g1 = gamma_draw(seed, base + 1 + 2 * (uint64_t)i, l->o.mixup);
        double g2 = gamma_draw(seed, base + 2 + 2 * (uint64_t)i, l->o.mixup);
        double b = g1 + g2 > 0 ? g1 / (g1 + g2) : 0.5;
        const float lam = (float)(b > 0.5 ? b : 1 - b), mu = 1 - lam;
        const float *xa = l->xmix + (size_t)i * per, *xb = l->xmix + (size_t)perm[i] * per;
        float *xo = l->x + (size_t)i * per;
        for (size_t k = 0; k < per; k++) xo[k] = lam * xa[k] + mu * xb[k];
        const float *ta = l->tmix + (size_t)i * C, *tb = l->tmix + (size_t)perm[i] * C;
        for (size_t k = 0; k < C; k++) l->t[(size_t)i * C + k] = lam * ta[k] + mu * tb[k];
    }
    free(perm);
    l->soft = true;
    return 0;
}

/* ---------------------------------------------------------------- one training step */

static float train_step(learner *l, int n, bool from_cache) {
    net *m = l->net;
    net_set_batch(m, n);
    const float *logits = from_cache ? net_forward_from(m, l->cache_node + 1, true) : net_forward(m, l->x, true);
    if (!logits) { /* out of memory for activations */
        l->step_failed = true;
        return NAN;
    }
    float loss = batch_loss(l, n, logits, l->dl);
    net_zero_grad(m);
    if (net_backward(m, l->dl) < 0) {
        l->step_failed = true;
        return NAN;
    }
    optim_step(l->opt, m);
    return loss;
}

static void set_freeze(learner *l, bool frozen) {
    net_freeze_groups(l->net, frozen ? 2 : 0);
    net_freeze_bn(l->net, 2, frozen || l->o.freeze_bn);
}

/* ---------------------------------------------------------------- progress */

static void progress(const learner *l, const char *what, int done, int total, double t0, int images) {
    if (!l->o.progress) return;
    double el = now() - t0, rate = el > 0 ? images / el : 0;
    double eta = done > 0 ? el / done * (total - done) : 0;
    if (isatty(2)) {
        int w = 30, fill = total ? done * w / total : w;
        fprintf(stderr, "\r%-12s [", what);
        for (int i = 0; i < w; i++) fputc(i < fill ? '#' : '.', stderr);
        fprintf(stderr, "] %d/%d  %6.1f img/s  ETA %02d:%02d ", done, total, rate, (int)eta / 60, (int)eta % 60);
        if (done == total) fputc('\n', stderr);
        fflush(stderr);
    } else if (done == total) {
        fprintf(stderr, "%s: %d batches, %.1f img/s, %.1f s\n", what, total, rate, el);
    }
}

/* ---------------------------------------------------------------- checkpoints */

static int save_checkpoint(learner *l, int phase_epochs_done) {
    if (!l->o.run_dir) return 0;
    char path[4096], buf[64];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", l->o.run_dir);
    st_writer *w = st_writer_new();
    if (!w || net_add_to_writer(l->net, w) < 0) {
        st_writer_free(w);
        return sn_error_prefix("%s", path);
    }
    const net *m = l->net;
    int64_t *ts = malloc(sizeof(int64_t) * (size_t)(m->n_params + 1));
    for (int i = 0; i < m->n_params && ts; i++) {
        const param *p = &m->params[i];
        ts[i] = l->opt->t[i];
        if (p->buffer) continue;
        int64_t shape[1] = {(int64_t)p->numel};
        char name[160];
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        st_writer_add_f32(w, name, 1, shape, l->opt->m + p->off);
        if (l->opt->v) {
            snprintf(name, sizeof name, "optim.v.%s", p->name);
            st_writer_add_f32(w, name, 1, shape, l->opt->v + p->off);
        }
    }
    int64_t tshape[1] = {m->n_params};
    if (ts) st_writer_add(w, "optim.t", ST_I64, 1, tshape, ts);
    free(ts);
    st_writer_meta(w, "stylenet.checkpoint", "1");
    st_writer_meta(w, "optimizer", optim_name(l->opt->kind));
    snprintf(buf, sizeof buf, "%d", l->cur_phase);
    st_writer_meta(w, "phase", buf);
    snprintf(buf, sizeof buf, "%d", phase_epochs_done);
    st_writer_meta(w, "phase_epochs_done", buf);
    snprintf(buf, sizeof buf, "%d", l->epoch);
    st_writer_meta(w, "epoch", buf);
    snprintf(buf, sizeof buf, "%ld", l->iter);
    st_writer_meta(w, "iter", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)m->step);
    st_writer_meta(w, "net_step", buf);
    snprintf(buf, sizeof buf, "%.17g", l->seconds);
    st_writer_meta(w, "seconds", buf);
    char *h = cJSON_PrintUnformatted(l->history), *nt = cJSON_PrintUnformatted(l->notes);
    if (h) st_writer_meta(w, "history", h);
    if (nt) st_writer_meta(w, "notes", nt);
    free(h);
    free(nt);
    int r = st_writer_save(w, path);
    st_writer_free(w);
    return r;
}

int learner_resume(learner *l) {
    if (!l->o.run_dir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", l->o.run_dir);
    if (access(path, F_OK) != 0) return 0;
    st_file *f = st_open(path);
    if (!f) return -1;
    int r = -1;
    const char *ck = st_meta(f, "stylenet.checkpoint"), *opt = st_meta(f, "optimizer");
    if (!ck || !opt || strcmp(opt, optim_name(l->opt->kind)) != 0) {
        sn_error("%s: not a checkpoint of this run (optimizer %s, this run uses %s)", path, opt ? opt : "none",
                 optim_name(l->opt->kind));
        goto done;
    }
    net_load_opts lo = {.ignore_extra = "optim."};
    if (net_load_st(l->net, f, &lo) < 0) goto done;
    net *m = l->net;
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (p->buffer) continue;
        char name[160];
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        const st_tensor *t = st_find(f, name);
        if (!t || st_read_f32(f, t, l->opt->m + p->off, p->numel) < 0) {
            sn_error("%s: optimiser state '%s' missing or of the wrong size", path, name);
            goto done;
        }
        if (l->opt->v) {
            snprintf(name, sizeof name, "optim.v.%s", p->name);
            t = st_find(f, name);
            if (!t || st_read_f32(f, t, l->opt->v + p->off, p->numel) < 0) {
                sn_error("%s: optimiser state '%s' missing or of the wrong size", path, name);
                goto done;
            }
        }
    }
    const st_tensor *tt = st_find(f, "optim.t");
    if (!tt || st_read_i64(f, tt, l->opt->t, (size_t)m->n_params) < 0) {
        sn_error("%s: optimiser step counts missing", path);
        goto done;
    }
    l->resume_phase = atoi(st_meta(f, "phase") ? st_meta(f, "phase") : "0");
    l->resume_epoch = atoi(st_meta(f, "phase_epochs_done") ? st_meta(f, "phase_epochs_done") : "0");
    l->epoch = atoi(st_meta(f, "epoch") ? st_meta(f, "epoch") : "0");
    l->iter = atol(st_meta(f, "iter") ? st_meta(f, "iter") : "0");
    m->step = strtoull(st_meta(f, "net_step") ? st_meta(f, "net_step") : "0", NULL, 10);
    l->seconds = atof(st_meta(f, "seconds") ? st_meta(f, "seconds") : "0");
    cJSON *h = cJSON_Parse(st_meta(f, "history") ? st_meta(f, "history") : "[]");
    cJSON *nt = cJSON_Parse(st_meta(f, "notes") ? st_meta(f, "notes") : "{}");
    if (h) {
        cJSON_Delete(l->history);
        l->history = h;
    }
    if (nt) {
        cJSON_Delete(l->notes);
        l->notes = nt;
    }
    if (l->hist) { /* rewrite the history file as it was at the checkpoint */
        const cJSON *row;
        cJSON_ArrayForEach(row, l->history) {
            char *s = cJSON_PrintUnformatted(row);
            if (s) fprintf(l->hist, "%s\n", s);
            free(s);
        }
        fflush(l->hist);
    }
    r = 1;
done:
    st_close(f);
    return r;
}

/* ---------------------------------------------------------------- validation */

static void score(learner *l, int n, const float *probs, const float *targets, const int *labels, eval_result *r) {
    r->n = n;
    r->n_groups = l->n_groups;
    if (l->multi) {
        r->fbeta = metrics_fbeta_samples(n, l->C, probs, targets, l->o.thresh, l->o.beta);
        r->best_thresh = metrics_best_threshold(n, l->C, probs, targets, l->o.beta, &r->best_fbeta);
    } else {
        r->accuracy = metrics_accuracy(n, l->C, probs, labels);
    }
    for (int g = 0; g < l->n_groups; g++)
        r->group_acc[g] = metrics_group_accuracy(n, l->C, probs, targets, l->bounds[g], l->bounds[g + 1]);
    if (l->n_groups) r->all_right = metrics_groups_all_right(n, l->C, probs, targets, l->bounds, l->n_groups);
}

static void to_probs(learner *l, int n, const float *logits, float *out) {
    if (l->multi) sigmoid(n * l->C, logits, out);
    else softmax(n, l->C, logits, out);
}

int learner_validate(learner *l, int size, int tta, eval_result *r, float *probs_out) {
    double t0 = now();
    memset(r, 0, sizeof *r);
    const int nv = l->split.n_valid, C = l->C;
    if (nv == 0) return sn_error("no validation images");
    if (ensure_buffers(l, size) < 0) return -1;
    float *acc = calloc((size_t)nv * C, sizeof(float)), *tg = malloc(sizeof(float) * (size_t)nv * C);
    float *pb = malloc(sizeof(float) * (size_t)l->o.batch * C);
    int *lab = malloc(sizeof(int) * (size_t)nv);
    int ret = -1;
    if (!acc || !tg || !pb || !lab) {
        sn_error("out of memory");
        goto done;
    }
    for (int i = 0; i < nv; i++) {
        const uint8_t *h = ds_hot(l->ds, l->split.valid[i]);
        for (int c = 0; c < C; c++) tg[(size_t)i * C + c] = h[c];
        lab[i] = l->ds->items[l->split.valid[i]].label;
    }
    double loss = 0;
    for (int v = 0; v <= tta; v++) {
        loader *ld = v == 0 ? get_loader(l, &l->valid, l->split.valid, nv, false, false, size, 0)
                            : get_loader(l, &l->tta, l->split.valid, nv, true, false, size, 1000000 + v);
        if (!ld) goto done;
        int got, done_n = 0;
        while ((got = loader_next(ld, l->x, l->y, l->t)) > 0) {
            net_set_batch(l->net, got);
            const float *logits = net_forward(l->net, l->x, false);
            if (!logits) { /* out of memory */
                got = -1;
                break;
            }
            if (v == 0) loss += (double)batch_loss(l, got, logits, NULL) * got;
            to_probs(l, got, logits, pb);
            for (size_t k = 0; k < (size_t)got * C; k++) acc[(size_t)done_n * C + k] += pb[k];
            done_n += got;
        }
        if (got < 0) goto done;
    }
    for (size_t k = 0; k < (size_t)nv * C; k++) acc[k] /= (float)(tta + 1);
    r->loss = loss / nv;
    score(l, nv, acc, tg, lab, r);
    if (probs_out) memcpy(probs_out, acc, sizeof(float) * (size_t)nv * C);
    ret = 0;
done:
    net_set_batch(l->net, l->o.batch);
    free(acc); free(tg); free(pb); free(lab);
    l->seconds += now() - t0;
    return ret;
}

int learner_score(learner *l, const float *probs, eval_result *r) {
    memset(r, 0, sizeof *r);
    const int nv = l->split.n_valid, C = l->C;
    if (nv == 0) return sn_error("no validation images");
    float *tg = malloc(sizeof(float) * (size_t)nv * C);
    int *lab = malloc(sizeof(int) * (size_t)nv);
    if (!tg || !lab) {
        free(tg); free(lab);
        return sn_error("out of memory");
    }
    for (int i = 0; i < nv; i++) {
        const uint8_t *h = ds_hot(l->ds, l->split.valid[i]);
        for (int c = 0; c < C; c++) tg[(size_t)i * C + c] = h[c];
        lab[i] = l->ds->items[l->split.valid[i]].label;
    }
    score(l, nv, probs, tg, lab, r);
    free(tg); free(lab);
    return 0;
}

/* validation straight from precomputed activations */
static int validate_cached(learner *l, eval_result *r) {
    const int nv = l->split.n_valid, C = l->C, B = l->o.batch;
    memset(r, 0, sizeof *r);
    float *probs = malloc(sizeof(float) * (size_t)nv * C), *tg = malloc(sizeof(float) * (size_t)nv * C);
    int *lab = malloc(sizeof(int) * (size_t)nv);
    if (!probs || !tg || !lab) {
        free(probs); free(tg); free(lab);
        return sn_error("out of memory");
    }
    double loss = 0;
    for (int s = 0; s < nv; s += B) {
        int n = nv - s < B ? nv - s : B;
        for (int i = 0; i < n; i++) set_target(l, i, l->split.valid[s + i]);
        memcpy(l->net->nodes[l->cache_node].y, l->feat_valid + (size_t)s * l->cache_dim, sizeof(float) * n * l->cache_dim);
        net_set_batch(l->net, n);
        const float *logits = net_forward_from(l->net, l->cache_node + 1, false);
        if (!logits) {
            free(probs); free(tg); free(lab);
            return -1;
        }
        loss += (double)batch_loss(l, n, logits, NULL) * n;
        to_probs(l, n, logits, probs + (size_t)s * C);
        memcpy(tg + (size_t)s * C, l->t, sizeof(float) * n * C);
        memcpy(lab + s, l->y, sizeof(int) * n);
    }
    net_set_batch(l->net, B);
    r->loss = loss / nv;
    score(l, nv, probs, tg, lab, r);
    free(probs); free(tg); free(lab);
    return 0;
}

/* ---------------------------------------------------------------- fitting */

static void print_row(learner *l, const phase *p, int size, double tl, const eval_result *r, double secs) {
    if (l->o.quiet) return;
    if (!l->table_header) {
        printf("%5s  %-8s %4s  %10s  %10s", "epoch", "phase", "size", "train_loss", "valid_loss");
        if (l->multi) printf("  %6s", "F2");
        else printf("  %8s", "accuracy");
        for (int g = 0; g < l->n_groups; g++) printf("  %8.8s", l->ds->group_names[g]);
        if (l->n_groups) printf("  %6s", "both");
        printf("  %7s\n", "time");
        l->table_header = true;
    }
    printf("%5d  %-8s %4d  %10.4f  %10.4f", l->epoch, p->name ? p->name : "", size, tl, r->loss);
    if (l->multi) printf("  %6.4f", r->fbeta);
    else printf("  %8.4f", r->accuracy);
    for (int g = 0; g < l->n_groups; g++) printf("  %8.4f", r->group_acc[g]);
    if (l->n_groups) printf("  %6.4f", r->all_right);
    printf("  %6.1fs\n", secs);
    fflush(stdout);
}

static cJSON *result_json(const learner *l, const eval_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "valid_loss", r->loss);
    if (l->multi) {
        cJSON_AddNumberToObject(o, "fbeta", r->fbeta);
        cJSON_AddNumberToObject(o, "best_thresh", r->best_thresh);
        cJSON_AddNumberToObject(o, "best_fbeta", r->best_fbeta);
    } else {
        cJSON_AddNumberToObject(o, "accuracy", r->accuracy);
    }
    for (int g = 0; g < l->n_groups; g++) cJSON_AddNumberToObject(o, l->ds->group_names[g], r->group_acc[g]);
    if (l->n_groups) cJSON_AddNumberToObject(o, "all_right", r->all_right);
    return o;
}

int learner_fit(learner *l, const phase *p) {
    const int my_phase = l->phase_idx++;
    l->cur_phase = my_phase;
    int epochs = p->epochs;
    if (p->sched == SCHED_SGDR && epochs <= 0) epochs = sgdr_epochs(p->cycles, p->cycle_len, p->cycle_mult);
    int start = 0;
    if (l->resume_phase >= 0) {
        if (my_phase < l->resume_phase) return 0; /* done before the checkpoint */
        if (my_phase == l->resume_phase) start = l->resume_epoch;
    }
    if (start >= epochs) return 0;
    if (l->o.stop_after > 0 && l->epoch >= l->o.stop_after) return 1;
    const bool cached = p->frozen && !p->augment && l->cache_node >= 0;
    set_freeze(l, p->frozen);
    if (ensure_buffers(l, p->size) < 0) return -1;
    if (cached && ensure_features(l, p->size) < 0) return -1;
    const int nt = l->split.n_train, B = l->o.batch;
    const long per_epoch = nt / B;
    if (per_epoch == 0) return sn_error("%d training images, fewer than one batch of %d", nt, B);
    int *perm = cached ? malloc(sizeof(int) * (size_t)nt) : NULL;
    sgdr_params sp = {.cycle_len = p->cycle_len > 0 ? p->cycle_len : 1, .cycle_mult = p->cycle_mult > 0 ? p->cycle_mult : 1};
    onecycle_params oc = onecycle_defaults();
    const long total = per_epoch * epochs;
    for (int e = start; e < epochs; e++) {
        double t0 = now(), loss_sum = 0;
        int batches = 0;
        char what[64];
        snprintf(what, sizeof what, "epoch %d", l->epoch + 1);
        loader *ld = NULL;
        if (cached) epoch_perm(l->o.seed, l->epoch, perm, nt);
        else if (!(ld = get_loader(l, p->augment ? &l->train_aug : &l->train_plain, l->split.train, nt, p->augment, true,
                                   p->size, l->epoch))) {
            free(perm);
            return -1;
        }
        for (long b = 0; b < per_epoch; b++) {
            long it = (long)e * per_epoch + b; /* position in this phase */
            double f = p->sched == SCHED_SGDR ? sgdr_factor(&sp, it, per_epoch)
                     : p->sched == SCHED_ONECYCLE ? onecycle_factor(&oc, it, total) : 1.0;
            float lrs[3] = {(float)(p->lrs[0] * f), (float)(p->lrs[1] * f), (float)(p->lrs[2] * f)};
            optim_set_lrs(l->opt, lrs, 3);
            if (p->sched == SCHED_ONECYCLE) l->opt->momentum = (float)onecycle_momentum(&oc, it, total);
            int n;
            if (cached) {
                n = B;
                float *dst = l->net->nodes[l->cache_node].y;
                for (int i = 0; i < n; i++) {
                    int k = perm[b * B + i];
                    memcpy(dst + (size_t)i * l->cache_dim, l->feat_train + (size_t)k * l->cache_dim,
                           sizeof(float) * l->cache_dim);
                    set_target(l, i, l->split.train[k]);
                }
            } else {
                n = loader_next(ld, l->x, l->y, l->t);
                if (n < 0) {
                    free(perm);
                    return -1;
                }
                if (n == 0) break;
            }
            if (!cached && p->augment && l->o.mixup > 0 && mixup_batch(l, n, p->size) < 0) {
                free(perm);
                return -1;
            }
            if (l->o.label_smooth > 0) smooth_targets(l, n);
            float loss = train_step(l, n, cached);
            l->soft = false;
            if (l->step_failed) {
                free(perm);
                return sn_error_prefix("training step at epoch %d batch %ld", l->epoch + 1, b + 1);
            }
            if (!isfinite(loss)) {
                free(perm);
                return sn_error("training diverged at epoch %d batch %ld (loss %g): lower the learning rate",
                                l->epoch + 1, b + 1, loss);
            }
            loss_sum += loss;
            batches++;
            l->iter++;
            cJSON *row = cJSON_CreateObject();
            cJSON_AddNumberToObject(row, "iter", (double)l->iter);
            cJSON_AddNumberToObject(row, "loss", loss);
            cJSON_AddNumberToObject(row, "lr", lrs[2]);
            log_json(l, row, false);
            progress(l, what, batches, (int)per_epoch, t0, batches * B);
        }
        if (ld) { /* drain to the end of the epoch so the loader moves on */
            int n;
            while ((n = loader_next(ld, l->x, NULL, NULL)) > 0) {}
            if (n < 0) {
                free(perm);
                return -1;
            }
        }
        double train_secs = now() - t0;
        l->seconds += train_secs;
        eval_result r;
        int vr = cached ? validate_cached(l, &r) : learner_validate(l, p->size, 0, &r, NULL);
        if (vr < 0) {
            free(perm);
            return -1;
        }
        l->epoch++;
        double secs = now() - t0;
        print_row(l, p, p->size, loss_sum / (batches ? batches : 1), &r, secs);
        cJSON *row = result_json(l, &r);
        cJSON_AddNumberToObject(row, "epoch", l->epoch);
        cJSON_AddStringToObject(row, "phase", p->name ? p->name : "");
        cJSON_AddNumberToObject(row, "size", p->size);
        cJSON_AddNumberToObject(row, "train_loss", loss_sum / (batches ? batches : 1));
        cJSON_AddNumberToObject(row, "lr", p->lrs[2]);
        cJSON_AddItemToObject(row, "lrs", cJSON_CreateFloatArray(p->lrs, 3)); /* peak rate of each layer group */
        cJSON_AddNumberToObject(row, "iter", (double)l->iter);                /* optimiser steps at the end of the epoch */
        cJSON_AddNumberToObject(row, "seconds", secs);
        cJSON_AddNumberToObject(row, "train_images_per_s", batches * B / train_secs);
        log_json(l, row, true);
        if (save_checkpoint(l, e + 1) < 0) {
            free(perm);
            return -1;
        }
        if (l->o.stop_after > 0 && l->epoch >= l->o.stop_after) {
            free(perm);
            return 1;
        }
    }
    free(perm);
    return 0;
}

/* ---------------------------------------------------------------- LR finder */

double learner_lr_find(learner *l, int size, double start, double end, int n, const char *png) {
    return learner_lr_find_info(l, size, start, end, n, png, NULL);
}

double learner_lr_find_info(learner *l, int size, double start, double end, int n, const char *png, lr_find_info *info) {
    double t0 = now();
    if (info) memset(info, 0, sizeof *info);
    if (!(start > 0) || !(end > start) || n < 2) {
        sn_error("LR finder: the sweep needs 0 < start < end and at least 2 iterations (%g .. %g, %d)", start, end, n);
        return -1;
    }
    net *m = l->net;
    bool frozen = m->n_params > 0 && m->params[0].frozen;
    const bool cached = frozen && l->cache_node >= 0;
    if (ensure_buffers(l, size) < 0) return -1;
    if (cached && ensure_features(l, size) < 0) return -1;
    /* save what the sweep will change */
    float *w = malloc(sizeof(float) * m->n_floats), *om = malloc(sizeof(float) * m->n_floats);
    float *ov = l->opt->v ? malloc(sizeof(float) * m->n_floats) : NULL;
    int64_t *ot = malloc(sizeof(int64_t) * (size_t)(m->n_params + 1));
    double *lrs = malloc(sizeof(double) * n), *losses = malloc(sizeof(double) * n), *sm = malloc(sizeof(double) * n);
    int *perm = malloc(sizeof(int) * (size_t)l->split.n_train);
    uint64_t step = m->step;
    double result = -1;
    if (!w || !om || (l->opt->v && !ov) || !ot || !lrs || !losses || !sm || !perm) {
        sn_error("out of memory");
        goto done;
    }
    memcpy(w, m->data, sizeof(float) * m->n_floats);
    memcpy(om, l->opt->m, sizeof(float) * m->n_floats);
    if (ov) memcpy(ov, l->opt->v, sizeof(float) * m->n_floats);
    memcpy(ot, l->opt->t, sizeof(int64_t) * (size_t)m->n_params);
    const int B = l->o.batch, nt = l->split.n_train, per_epoch = nt / B;
    if (per_epoch == 0) {
        sn_error("%d training images, fewer than one batch of %d", nt, B);
        goto done;
    }
    long count = 0;
    int ep = 0;
    loader *ld = NULL;
    bool diverged = false;
    while (count < n && !diverged) {
        const long before = count;
        if (cached) epoch_perm(l->o.seed ^ 0x1f1d, ep, perm, nt);
        else if (!(ld = get_loader(l, &l->train_plain, l->split.train, nt, false, true, size, 500000 + ep))) goto done;
        for (int b = 0; b < per_epoch && count < n; b++) {
            double lr = lr_sweep(start, end, count, n);
            optim_set_lr(l->opt, (float)lr);
            int got = B;
            if (cached) {
                for (int i = 0; i < B; i++) {
                    int k = perm[b * B + i];
                    memcpy(m->nodes[l->cache_node].y + (size_t)i * l->cache_dim,
                           l->feat_train + (size_t)k * l->cache_dim, sizeof(float) * l->cache_dim);
                    set_target(l, i, l->split.train[k]);
                }
            } else if ((got = loader_next(ld, l->x, l->y, l->t)) <= 0) {
                if (got < 0) goto done;
                break;
            }
            float loss = train_step(l, got, cached);
            if (l->step_failed) goto done;
            lrs[count] = lr;
            losses[count] = isfinite(loss) ? loss : INFINITY;
            count++;
            progress(l, "lr_find", (int)count, n, t0, (int)count * B);
            if (!isfinite(loss)) diverged = true;
            if (count > 10) { /* stop early once the smoothed loss has clearly diverged */
                long st, mi, stop = lr_find_analyse(lrs, losses, count, sm, &st, &mi);
                if (stop < count) diverged = true;
            }
            if (diverged) break;
        }
        if (ld) {
            int g;
            while ((g = loader_next(ld, l->x, NULL, NULL)) > 0) {}
        }
        ep++;
        if (count == before) break; /* no batch in a whole epoch */
    }
    if (l->o.progress && isatty(2)) fputc('\n', stderr);
    long steep, mi, stop = lr_find_analyse(lrs, losses, count, sm, &steep, &mi);
    if (stop < 2) {
        sn_error("LR finder: the loss diverged at once (rate %g, loss %g): lower the start of the sweep", start,
                 count ? losses[0] : NAN);
        goto done;
    }
    double sug = lrs[mi] / 10;
    if (lrs[steep] < sug) sug = lrs[steep];
    result = sug;
    if (info) {
        info->suggestion = sug;
        info->min_lr = lrs[mi];
        info->steepest_lr = lrs[steep];
        info->min_loss = sm[mi];
        info->last_lr = lrs[count - 1];
        info->iters = (int)count;
        info->kept = (int)stop;
        info->diverged = diverged;
    }
    cJSON *row = cJSON_CreateObject();
    cJSON_AddItemToObject(row, "lr_find_lr", cJSON_CreateDoubleArray(lrs, (int)stop));
    cJSON_AddItemToObject(row, "lr_find_loss", cJSON_CreateDoubleArray(sm, (int)stop));
    cJSON_AddNumberToObject(row, "lr_find_suggestion", sug);
    cJSON_AddNumberToObject(row, "lr_find_min", lrs[mi]);
    cJSON_AddNumberToObject(row, "lr_find_steepest", lrs[steep]);
    log_json(l, row, true);
    if (png) {
        plot_series s = {.label = "smoothed loss", .x = lrs, .y = sm, .n = (int)stop, .r = 0.1, .g = 0.3, .b = 0.8};
        char lab[64];
        snprintf(lab, sizeof lab, "suggested %.2g", sug);
        plot_opts po = {.title = "Learning-rate finder", .xlabel = "learning rate (log scale)",
                        .ylabel = "training loss (smoothed)", .logx = true, .has_marker = true, .marker_x = sug,
                        .marker_label = lab};
        if (plot_lines(png, &po, &s, 1) < 0) {
            result = -1;
            goto done;
        }
    }
done:
    if (w) memcpy(m->data, w, sizeof(float) * m->n_floats);
    if (om) memcpy(l->opt->m, om, sizeof(float) * m->n_floats);
    if (ov) memcpy(l->opt->v, ov, sizeof(float) * m->n_floats);
    if (ot) memcpy(l->opt->t, ot, sizeof(int64_t) * (size_t)m->n_params);
    m->step = step;
    free(w); free(om); free(ov); free(ot); free(lrs); free(losses); free(sm); free(perm);
    l->seconds += now() - t0;
    return result;
}
