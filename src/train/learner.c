/* learner.c - the learner's set-up and what its loops share: buffers, loaders, the loss and
 * targets, precomputed activations, history rows and events (see learner.h, learner_internal.h). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/rng.h"
#include "dist/dist.h"
#include "kernels/loss.h"
#include "train/learner_internal.h"

learner_opts learner_defaults(void) {
    learner_opts o = {.batch = 32, .seed = 42, .opt = OPT_ADAMW, .wd = 1e-2f, .bn_wd = true, .freeze_bn = false,
                      .n_threads = 2, .thresh = 0.2f, .beta = 2.0f, .run_dir = NULL, .quiet = false, .progress = true};
    aug_defaults(&o.aug);
    return o;
}

double learner_now(void) { return omp_get_wtime(); }

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

/* label groups scored apart: contiguous runs of classes [bounds[g], bounds[g+1]) */
static void find_groups(learner *l, const dataset *ds) {
    if (ds->n_groups <= 1 || ds->n_groups > 8) return;
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

/* opens run_dir/history.jsonl for appending (learner_resume or the first row settles what it keeps) */
static int open_history(learner *l) {
    mkdir(l->o.run_dir, 0777);
    char p[4096];
    snprintf(p, sizeof p, "%s/history.jsonl", l->o.run_dir);
    l->hist = fopen(p, "a");
    if (!l->hist) return sn_error("%s: cannot write the training history: %m", p);
    return 0;
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
    if (l->split.n_train > 0 && l->split.n_train < l->o.batch) { /* a small set: one batch of all of it */
        l->batch_asked = l->o.batch;
        l->o.batch = l->split.n_train;
    }
    l->C = ds->n_classes;
    l->multi = ds->kind == DS_MULTI;
    find_groups(l, ds);
    l->opt = optim_create(l->net, l->o.opt, 1e-3f, l->o.wd);
    l->history = cJSON_CreateArray();
    l->notes = cJSON_CreateObject();
    l->cache_node = find_cache_node(l->net);
    if (l->cache_node >= 0 && net_keep(l->net, l->cache_node) < 0) l->cache_node = -1;
    l->resume_phase = -1;
    if (l->opt && (!l->history || !l->notes)) sn_error("out of memory");
    if (!l->opt || !l->history || !l->notes || learner_dist_setup(l) < 0 ||
        (l->o.run_dir && learner_writes(l) && open_history(l) < 0)) {
        learner_free(l);
        return NULL;
    }
    optim_set_bn_wd(l->opt, l->o.bn_wd);
    return l;
}

void learner_free(learner *l) {
    if (!l) return;
    learner_dist_free(l);
    optim_free(l->opt);
    loader_free(l->train_aug);
    loader_free(l->train_plain);
    loader_free(l->valid);
    loader_free(l->tta);
    free(l->x); free(l->t); free(l->dl); free(l->dl2); free(l->probs); free(l->xmix); free(l->tmix); free(l->y);
    free(l->feat_train); free(l->feat_valid);
    cJSON_Delete(l->history);
    cJSON_Delete(l->notes);
    if (l->hist && fclose(l->hist) != 0) /* its rows were flushed and checked as they were written */
        learner_message(&l->o, LEARNER_WARNING, "%s/history.jsonl: closing the training history failed: %s",
                        l->o.run_dir, strerror(errno));
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

int learner_batch(const learner *l) { return l->o.batch; }

char *learner_history_json(const learner *l) { return cJSON_PrintUnformatted(l->history); }

/* ---------------------------------------------------------------- history and events */

int learner_history_append(learner *l, const char *text) {
    errno = 0;
    const bool wrote = fprintf(l->hist, "%s\n", text) >= 0 && fflush(l->hist) == 0 && !ferror(l->hist);
    if (wrote) return 0;
    const int e = errno ? errno : EIO;
    clearerr(l->hist);
    return sn_error("%s/history.jsonl: writing the training history failed: %s", l->o.run_dir, strerror(e));
}

int learner_log(learner *l, cJSON *row, bool keep) {
    int r = 0;
    if (l->hist) {
        if (!l->hist_started) r = learner_history_cut(l, 0); /* a run that did not resume starts afresh */
        char *s = row && r == 0 ? cJSON_PrintUnformatted(row) : NULL;
        if (r == 0) r = s ? learner_history_append(l, s) : sn_error("%s/history.jsonl: out of memory", l->o.run_dir);
        free(s);
    }
    if (keep && row) cJSON_AddItemToArray(l->history, row);
    else cJSON_Delete(row);
    return r;
}

int learner_history_cut(learner *l, long bytes) {
    l->hist_started = true;
    if (!l->hist) return 0; /* a process that writes no files */
    fflush(l->hist);
    if (ftruncate(fileno(l->hist), (off_t)bytes) != 0) return sn_error("%s/history.jsonl: cannot cut it: %m", l->o.run_dir);
    return 0;
}

void learner_message(const learner_opts *o, learner_msg kind, const char *fmt, ...) {
    if (!o->events || !o->events->message || (kind == LEARNER_NOTE && o->quiet)) return;
    char small[512], *text = small;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof small && (text = malloc((size_t)len + 1))) vsnprintf(text, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    o->events->message(o->events->ctx, kind, text ? text : small); /* cut to 511 bytes without memory */
    if (text != small) free(text);
}

void learner_report_progress(const learner *l, const char *what, int done, int total, double t0, int images) {
    const learner_events *ev = l->o.events;
    if (!l->o.progress || !ev || !ev->progress) return;
    learner_progress_event p = {.what = what, .done = done, .total = total, .images = images,
                                .seconds = learner_now() - t0};
    ev->progress(ev->ctx, &p);
}

void learner_report_epoch(const learner *l, const char *phase, int size, double train_loss, const eval_result *r,
                          double secs) {
    const learner_events *ev = l->o.events;
    if (l->o.quiet || !ev || !ev->epoch) return;
    learner_epoch_event e = {.epoch = l->epoch, .phase = phase ? phase : "", .size = size, .train_loss = train_loss,
                             .valid = r, .seconds = secs, .multi = l->multi, .n_groups = l->n_groups,
                             .group_names = l->ds->group_names};
    ev->epoch(ev->ctx, &e);
}

long learner_batches(learner *l) {
    const int nt = l->split.n_train, B = l->o.batch;
    if (nt / B == 0) return sn_error("%d training images, fewer than one batch of %d", nt, B);
    if (l->batch_asked) {
        learner_message(&l->o, LEARNER_WARNING, "%d training images, fewer than one batch of %d: batches of %d instead",
                        nt, l->batch_asked, B);
        l->batch_asked = 0;
    }
    return nt / B;
}

/* ---------------------------------------------------------------- batches */

int learner_ensure_buffers(learner *l, int size) {
    if (l->net->nodes[0].h != size || l->net->nodes[0].w != size) {
        if (net_set_input_size(l->net, size, size) < 0) return -1;
    }
    size_t need = (size_t)l->o.batch * size * size * 3;
    if (need > l->x_floats) {
        free(l->x);
        l->x = malloc(need * sizeof(float));
        l->x_floats = l->x ? need : 0;
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

loader *learner_loader(learner *l, loader **slot, const int *idx, int n, bool augment, bool train, int size,
                       int epoch) {
    if (!*slot) {
        loader_opts lo = loader_defaults();
        lo.size = size;
        lo.batch = l->o.batch;
        lo.augment = augment;
        lo.aug = l->o.aug;
        if (!train) aug_shift_off(&lo.aug); /* test-time views: no new backgrounds, no CutMix */
        memcpy(lo.mean, l->model->mean, sizeof lo.mean);
        memcpy(lo.std, l->model->std, sizeof lo.std);
        lo.seed = l->o.seed;
        lo.shuffle = train;
        lo.drop_last = train;
        lo.n_threads = l->o.n_threads;
        if (train && l->dist) { /* each process decodes its share of every batch */
            lo.shard = dist_rank();
            lo.n_shards = dist_size();
        }
        *slot = loader_create(l->ds, idx, n, &lo);
        if (!*slot) return NULL;
    }
    if (loader_set_size(*slot, size) < 0) return NULL;
    if (loader_epoch(*slot) != epoch && loader_set_epoch(*slot, epoch) < 0) return NULL;
    return *slot;
}

float learner_batch_loss(learner *l, int n, const float *logits, float *dl) {
    if (!l->multi && l->soft) { /* mixed targets: cross-entropy with class probabilities */
        const int whole[2] = {0, l->C};
        return loss_group_softmax_ce(n, l->C, logits, l->t, 1, whole, dl);
    }
    if (!l->multi) return loss_softmax_ce(n, l->C, logits, l->y, dl);
    float loss = loss_sigmoid_bce(n, l->C, logits, l->t, dl);
    if (l->o.group_ce > 0 && l->n_groups > 1) {
        const float w = l->o.group_ce;
        loss += w * loss_group_softmax_ce(n, l->C, logits, l->t, l->n_groups, l->bounds, dl ? l->dl2 : NULL);
        if (dl)
            for (size_t k = 0; k < (size_t)n * l->C; k++) dl[k] += w * l->dl2[k];
    }
    return loss;
}

void learner_set_target(learner *l, int r, int item) {
    const uint8_t *h = ds_hot(l->ds, item);
    for (int c = 0; c < l->C; c++) l->t[(size_t)r * l->C + c] = h[c];
    l->y[r] = l->ds->items[item].label;
}

static float step_loss(void *ctx, int n, const float *logits, float *dl) {
    learner *l = ctx;
    float loss = learner_batch_loss(l, n, logits, dl);
    learner_dist_scale(l, n, l->o.batch, dl);
    return loss;
}

int learner_train_step(learner *l, int n, bool from_cache, float *loss) {
    const learner_loss lf = {.fn = step_loss, .ctx = l, .dl = l->dl, .reduce = l->dist ? learner_dist_reduce : NULL};
    learner_dist_begin(l, n, l->o.batch);
    if (learner_step(l->net, l->opt, from_cache ? NULL : l->x, l->cache_node + 1, n, &lf, loss) < 0) return -1;
    *loss = (float)learner_dist_loss(l, n, l->o.batch, *loss);
    return 0;
}

/* ---------------------------------------------------------------- precompute */

static int compute_features_of(learner *l, const int *idx, int n, int size, float *out, loader **slot);

/* body activations (eval mode) of idx[0..n) at `size` into out[n * cache_dim]; with several
 * processes each computes its share and the rows are gathered */
static int compute_features(learner *l, const int *idx, int n, int size, float *out, loader **slot) {
    int lo, cnt;
    learner_dist_share(l, n, &lo, &cnt);
    memset(out, 0, sizeof(float) * (size_t)n * l->cache_dim);
    int rc = cnt > 0 ? compute_features_of(l, idx + lo, cnt, size, out + (size_t)lo * l->cache_dim, slot) : 0;
    if (dist_max_i(rc < 0) && rc == 0) return sn_error("precompute failed on another process");
    if (rc < 0) return -1;
    learner_dist_sum(l, out, (size_t)n * l->cache_dim);
    return 0;
}

/* compute_features on one process */
static int compute_features_of(learner *l, const int *idx, int n, int size, float *out, loader **slot) {
    loader *ld = learner_loader(l, slot, idx, n, false, false, size, 0);
    if (!ld) return -1;
    int got, done = 0;
    while ((got = loader_next(ld, l->x, NULL, NULL)) > 0) {
        net_set_batch(l->net, got);
        if (!net_forward(l->net, l->x, false)) return -1; /* runs the head too; only the cache node is kept */
        memcpy(out + (size_t)done * l->cache_dim, net_node_y(l->net, l->cache_node),
               sizeof(float) * (size_t)got * l->cache_dim);
        done += got;
    }
    net_set_batch(l->net, l->o.batch);
    if (got < 0) return -1;
    if (done != n) return sn_error("precompute: %d of %d images", done, n);
    return 0;
}

int learner_ensure_features(learner *l, int size) {
    if (l->feat_size == size) return 0;
    if (learner_ensure_buffers(l, size) < 0) return -1;
    const node *c = &l->net->nodes[l->cache_node];
    l->cache_dim = (size_t)c->h * c->w * c->c;
    free(l->feat_train);
    free(l->feat_valid);
    l->feat_size = 0;
    l->feat_train = malloc(sizeof(float) * (size_t)l->split.n_train * l->cache_dim);
    l->feat_valid = malloc(sizeof(float) * ((size_t)l->split.n_valid + 1) * l->cache_dim);
    if (!l->feat_train || !l->feat_valid) return sn_error("out of memory for precomputed activations");
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

void learner_cached_batch(learner *l, const int *perm, long first, int n) {
    float *dst = net_node_y(l->net, l->cache_node);
    for (int i = 0; i < n; i++) {
        int k = perm[first + i];
        memcpy(dst + (size_t)i * l->cache_dim, l->feat_train + (size_t)k * l->cache_dim, sizeof(float) * l->cache_dim);
        learner_set_target(l, i, l->split.train[k]);
    }
}

void learner_epoch_perm(uint64_t seed, int epoch, int *perm, int n) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates on counter-based draws */
        int j = (int)(rng_u64(seed, 0x70726563ull + (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
