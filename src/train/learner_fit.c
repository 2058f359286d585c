/* learner_fit.c - training phases: epochs of batches under a schedule, mixup and label
 * smoothing, then validation, the epoch's row and a checkpoint (see learner.h, learner_fit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "train/learner_internal.h"
#include "train/schedule.h"

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

/* label smoothing of the n targets in l->t: multi-label t(1-e) + e/2 for each tag's BCE,
 * single-label t(1-e) + e/C, then trained as soft targets (cross-entropy with probabilities) */
static void smooth_targets(learner *l, int n) {
    const float e = l->o.label_smooth, add = l->multi ? e / 2 : e / (float)l->C;
    for (size_t k = 0; k < (size_t)n * l->C; k++) l->t[k] = l->t[k] * (1 - e) + add;
    if (!l->multi) l->soft = true;
}

/* ---------------------------------------------------------------- one phase */

static void set_freeze(learner *l, bool frozen) {
    net_freeze_groups(l->net, frozen ? 2 : 0);
    net_freeze_bn(l->net, 2, frozen || l->o.freeze_bn);
}

/* what an epoch of a phase works with */
typedef struct {
    const phase *p;
    int epochs;
    bool cached;             /* trains the head on precomputed activations */
    long per_epoch, total;   /* batches */
    int *perm;               /* cached: the epoch's order of the training images */
    sgdr_params sp;
    onecycle_params oc;
} fit_state;

/* the rates (and, one-cycle, the momentum) of step `it` of the phase; the head's rate */
static float set_rates(learner *l, const fit_state *s, long it) {
    const phase *p = s->p;
    double f = p->sched == SCHED_SGDR ? sched_sgdr_factor(&s->sp, it, s->per_epoch)
             : p->sched == SCHED_ONECYCLE ? sched_onecycle_factor(&s->oc, it, s->total) : 1.0;
    float lrs[3] = {(float)(p->lrs[0] * f), (float)(p->lrs[1] * f), (float)(p->lrs[2] * f)};
    optim_set_lrs(l->opt, lrs, 3);
    if (p->sched == SCHED_ONECYCLE) optim_set_momentum(l->opt, (float)sched_onecycle_momentum(&s->oc, it, s->total));
    return lrs[2];
}

/* one batch of epoch e: its images (loader ld, or the cache), mixup and smoothing, the step,
 * its history row.  Returns the images trained on (0: the loader is at the end), -1 */
static int fit_batch(learner *l, const fit_state *s, loader *ld, int e, long b, float *loss) {
    const phase *p = s->p;
    const float lr = set_rates(l, s, (long)e * s->per_epoch + b);
    int n = l->o.batch, lo;
    if (s->cached) { /* this process's share of the batch */
        learner_dist_share(l, n, &lo, &n);
        learner_cached_batch(l, s->perm, b * l->o.batch + lo, n);
    } else if ((n = loader_next(ld, l->x, l->y, l->t)) <= 0) return n;
    if (!s->cached && p->augment && l->o.mixup > 0 && mixup_batch(l, n, p->size) < 0) return -1;
    if (!s->cached && p->augment && l->o.aug.cutmix_p > 0) l->soft = true; /* CutMix: targets mixed by area */
    if (l->o.label_smooth > 0) smooth_targets(l, n);
    int r = learner_train_step(l, n, s->cached, loss);
    l->soft = false;
    if (r < 0) return sn_error_prefix("training step at epoch %d batch %ld", l->epoch + 1, b + 1);
    if (!isfinite(*loss))
        return sn_error("training diverged at epoch %d batch %ld (loss %g): lower the learning rate", l->epoch + 1,
                        b + 1, *loss);
    l->iter++;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddNumberToObject(row, "iter", (double)l->iter);
    cJSON_AddNumberToObject(row, "loss", *loss);
    cJSON_AddNumberToObject(row, "lr", lr);
    return learner_log(l, row, false) < 0 ? -1 : n;
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

/* after the batches of epoch e: validation, the row (event and history), the checkpoint */
static int end_epoch(learner *l, const fit_state *s, int e, double t0, double loss_sum, int batches) {
    const phase *p = s->p;
    if (learner_dist_average_bn(l) < 0) return -1;
    double train_secs = learner_now() - t0;
    l->seconds += train_secs;
    eval_result r;
    const bool scored = l->split.n_valid > 0; /* without validation images: the training loss alone */
    if (scored && (s->cached ? learner_validate_cached(l, &r) : learner_validate(l, p->size, 0, &r, NULL)) < 0)
        return -1;
    l->epoch++;
    const double secs = learner_now() - t0, train_loss = loss_sum / (batches ? batches : 1);
    learner_report_epoch(l, p->name, p->size, train_loss, scored ? &r : NULL, secs);
    cJSON *row = scored ? result_json(l, &r) : cJSON_CreateObject();
    cJSON_AddNumberToObject(row, "epoch", l->epoch);
    cJSON_AddStringToObject(row, "phase", p->name ? p->name : "");
    cJSON_AddNumberToObject(row, "size", p->size);
    cJSON_AddNumberToObject(row, "train_loss", train_loss);
    cJSON_AddNumberToObject(row, "lr", p->lrs[2]);
    cJSON_AddItemToObject(row, "lrs", cJSON_CreateFloatArray(p->lrs, 3)); /* peak rate of each layer group */
    cJSON_AddNumberToObject(row, "iter", (double)l->iter);                /* optimiser steps at the end of the epoch */
    cJSON_AddNumberToObject(row, "seconds", secs);
    cJSON_AddNumberToObject(row, "train_images_per_s", batches * l->o.batch / train_secs);
    double bytes, wait;
    int ranks = learner_dist_epoch_stats(l, &bytes, &wait);
    if (ranks) { /* data parallelism: the gradient sums of a step, and what backward did not hide */
        cJSON_AddNumberToObject(row, "ranks", ranks);
        cJSON_AddNumberToObject(row, "allreduce_bytes_per_step", bytes);
        cJSON_AddNumberToObject(row, "allreduce_wait_s_per_step", wait);
    }
    if (learner_log(l, row, true) < 0) return -1;
    return learner_writes(l) ? learner_save_checkpoint(l, e + 1) : 0;
}

/* epoch e of the phase: 0, or -1 */
static int fit_epoch(learner *l, fit_state *s, int e) {
    const phase *p = s->p;
    double t0 = learner_now(), loss_sum = 0;
    int batches = 0;
    char what[64];
    snprintf(what, sizeof what, "epoch %d", l->epoch + 1);
    loader *ld = NULL;
    if (s->cached) learner_epoch_perm(l->o.seed, l->epoch, s->perm, l->split.n_train);
    else if (!(ld = learner_loader(l, p->augment ? &l->train_aug : &l->train_plain, l->split.train, l->split.n_train,
                                   p->augment, true, p->size, l->epoch)))
        return -1;
    for (long b = 0; b < s->per_epoch; b++) {
        float loss;
        int n = fit_batch(l, s, ld, e, b, &loss);
        if (n < 0) return -1;
        if (n == 0) break;
        loss_sum += loss;
        batches++;
        learner_report_progress(l, what, batches, (int)s->per_epoch, t0, batches * l->o.batch);
    }
    if (ld) { /* drain to the end of the epoch so the loader moves on */
        int n;
        while ((n = loader_next(ld, l->x, NULL, NULL)) > 0) {}
        if (n < 0) return -1;
    }
    return end_epoch(l, s, e, t0, loss_sum, batches);
}

int learner_fit(learner *l, const phase *p) {
    const int my_phase = l->phase_idx++;
    l->cur_phase = my_phase;
    fit_state s = {.p = p, .epochs = p->epochs, .oc = sched_onecycle_defaults(),
                   .sp = {.cycle_len = p->cycle_len > 0 ? p->cycle_len : 1,
                          .cycle_mult = p->cycle_mult > 0 ? p->cycle_mult : 1}};
    if (p->sched == SCHED_SGDR && s.epochs <= 0) s.epochs = sched_sgdr_epochs(p->cycles, p->cycle_len, p->cycle_mult);
    int start = 0;
    if (l->resume_phase >= 0) {
        if (my_phase < l->resume_phase) return 0; /* done before the checkpoint */
        if (my_phase == l->resume_phase) start = l->resume_epoch;
    }
    if (start >= s.epochs) return 0;
    if (l->o.stop_after > 0 && l->epoch >= l->o.stop_after) return 1;
    s.cached = p->frozen && !p->augment && l->cache_node >= 0;
    set_freeze(l, p->frozen);
    if (learner_ensure_buffers(l, p->size) < 0) return -1;
    if (s.cached && learner_ensure_features(l, p->size) < 0) return -1;
    if ((s.per_epoch = learner_batches(l)) < 0) return -1;
    s.total = s.per_epoch * s.epochs;
    if (s.cached && !(s.perm = malloc(sizeof(int) * (size_t)l->split.n_train))) return sn_error("out of memory");
    int rc = 0;
    for (int e = start; e < s.epochs && rc == 0; e++) {
        if (fit_epoch(l, &s, e) < 0) rc = -1;
        else if (l->o.stop_after > 0 && l->epoch >= l->o.stop_after) rc = 1;
    }
    free(s.perm);
    return rc;
}
