/* learner_valid.c - validation metrics: from the images (with TTA views), from precomputed
 * activations, or from given probabilities (see learner.h). */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fault.h"
#include "classifier/calibration.h"
#include "train/learner_internal.h"
#include "classifier/metrics.h"

static void score(const learner *l, int n, const float *probs, const float *targets, const int *labels,
                  eval_result *r) {
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

/* n rows of logits divided by the model's temperature into out (or logits themselves without one) */
static const float *calibrated(const learner *l, int n, const float *logits, float *out) {
    const double T = l->model->temperature;
    if (!(T > 0) || T == 1) return logits;
    calibration_scale((long)n * l->C, logits, T, out);
    return out;
}

static void to_probs(const learner *l, int n, const float *logits, float *out) {
    calibration_probs(n, l->C, logits, 1, l->multi, out);
}

/* targets tg[nv x C] and labels lab[nv] of the validation images */
static void valid_targets(const learner *l, float *tg, int *lab) {
    for (int i = 0; i < l->split.n_valid; i++) {
        const uint8_t *h = ds_hot(l->ds, l->split.valid[i]);
        for (int c = 0; c < l->C; c++) tg[(size_t)i * l->C + c] = h[c];
        lab[i] = l->ds->items[l->split.valid[i]].label;
    }
}

/* view v (0: plain, else augmented) of the validation images first..first+nv-1 (this process's
 * share): probabilities added to acc, the loss summed into *loss and the raw logits into raw
 * (when not NULL) (plain view only); acc and raw hold the rows of every validation image */
static int validate_view(learner *l, int size, int v, int first, int nv, float *acc, float *pb, double *loss,
                         float *raw) {
    const int C = l->C;
    if (nv == 0) return 0;
    acc += (size_t)first * C;
    if (raw) raw += (size_t)first * C;
    const int *idx = l->split.valid + first;
    loader *ld = v == 0 ? learner_loader(l, &l->valid, idx, nv, false, false, size, 0)
                        : learner_loader(l, &l->tta, idx, nv, true, false, size, 1000000 + v);
    if (!ld) return -1;
    int got, done_n = 0;
    while ((got = loader_next(ld, l->x, l->y, l->t)) > 0) {
        net_set_batch(l->net, got);
        const float *logits = net_forward(l->net, l->x, false);
        if (!logits) return -1; /* out of memory */
        sn_fault_point("valid");
        if (v == 0 && raw) memcpy(raw + (size_t)done_n * C, logits, sizeof(float) * (size_t)got * C);
        logits = calibrated(l, got, logits, pb);
        if (v == 0) *loss += (double)learner_batch_loss(l, got, logits, NULL) * got;
        to_probs(l, got, logits, pb);
        for (size_t k = 0; k < (size_t)got * C; k++) acc[(size_t)done_n * C + k] += pb[k];
        done_n += got;
    }
    return got < 0 ? -1 : 0;
}

int learner_validate(learner *l, int size, int tta, eval_result *r, float *probs_out) {
    return learner_validate_logits(l, size, tta, r, probs_out, NULL);
}

int learner_validate_logits(learner *l, int size, int tta, eval_result *r, float *probs_out, float *logits_out) {
    double t0 = learner_now();
    memset(r, 0, sizeof *r);
    const int nv = l->split.n_valid, C = l->C;
    if (nv == 0) return sn_error("no validation images");
    if (learner_ensure_buffers(l, size) < 0) return -1;
    float *acc = calloc((size_t)nv * C, sizeof(float)), *tg = malloc(sizeof(float) * (size_t)nv * C);
    float *pb = malloc(sizeof(float) * (size_t)l->o.batch * C);
    int *lab = malloc(sizeof(int) * (size_t)nv);
    int ret = -1;
    if (!acc || !tg || !pb || !lab) {
        sn_error("out of memory");
        goto done;
    }
    valid_targets(l, tg, lab);
    double loss = 0;
    int first, mine; /* with several processes each scores its share; the rows are gathered */
    learner_dist_share(l, nv, &first, &mine);
    if (logits_out && l->dist) memset(logits_out, 0, sizeof(float) * (size_t)nv * C);
    for (int v = 0; v <= tta; v++)
        if (validate_view(l, size, v, first, mine, acc, pb, &loss, logits_out) < 0) goto done;
    learner_dist_sum(l, acc, (size_t)nv * C);
    learner_dist_sum_d(l, &loss, 1);
    if (logits_out) learner_dist_sum(l, logits_out, (size_t)nv * C);
    for (size_t k = 0; k < (size_t)nv * C; k++) acc[k] /= (float)(tta + 1);
    r->loss = loss / nv;
    score(l, nv, acc, tg, lab, r);
    if (probs_out) memcpy(probs_out, acc, sizeof(float) * (size_t)nv * C);
    ret = 0;
done:
    net_set_batch(l->net, l->o.batch);
    free(acc); free(tg); free(pb); free(lab);
    l->seconds += learner_now() - t0;
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
    valid_targets(l, tg, lab);
    score(l, nv, probs, tg, lab, r);
    free(tg); free(lab);
    return 0;
}

int learner_validate_cached(learner *l, eval_result *r) {
    const int nv = l->split.n_valid, C = l->C, B = l->o.batch;
    memset(r, 0, sizeof *r);
    float *probs = malloc(sizeof(float) * (size_t)nv * C), *tg = malloc(sizeof(float) * (size_t)nv * C);
    int *lab = malloc(sizeof(int) * (size_t)nv);
    int ret = -1;
    if (!probs || !tg || !lab) {
        sn_error("out of memory");
        goto done;
    }
    double loss = 0;
    for (int s = 0; s < nv; s += B) {
        int n = nv - s < B ? nv - s : B;
        for (int i = 0; i < n; i++) learner_set_target(l, i, l->split.valid[s + i]);
        memcpy(net_node_y(l->net, l->cache_node), l->feat_valid + (size_t)s * l->cache_dim,
               sizeof(float) * n * l->cache_dim);
        net_set_batch(l->net, n);
        const float *logits = net_forward_from(l->net, l->cache_node + 1, false);
        if (!logits) goto done;
        sn_fault_point("valid");
        logits = calibrated(l, n, logits, probs + (size_t)s * C);
        loss += (double)learner_batch_loss(l, n, logits, NULL) * n;
        to_probs(l, n, logits, probs + (size_t)s * C);
        memcpy(tg + (size_t)s * C, l->t, sizeof(float) * n * C);
        memcpy(lab + s, l->y, sizeof(int) * n);
    }
    r->loss = loss / nv;
    score(l, nv, probs, tg, lab, r);
    ret = 0;
done:
    net_set_batch(l->net, B);
    free(probs); free(tg); free(lab);
    return ret;
}
