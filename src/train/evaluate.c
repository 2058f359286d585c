/* evaluate.c - scoring a classifier or an ensemble on labelled images (see evaluate.h). */
#include "train/evaluate.h"
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

dataset *evaluate_open_data(const ensemble *e, ds_options o, float valid_pct, uint64_t seed, ds_split *sp) {
    memset(sp, 0, sizeof *sp);
    const classifier *m = e->members[0];
    if (!o.task && classifier_is_multi(m)) o.task = "multi";
    dataset *ds = ds_open(&o);
    if (!ds) return NULL;
    ds_decode_opts dd = {.max_side = ensemble_max_size(e) * 5 / 4};
    if (classifier_check_classes(m, e->paths[0], ds) < 0 || ds_decode(ds, &dd) < 0) goto fail;
    if (valid_pct > 0) {
        if (ds_make_split(ds, seed, valid_pct, true, sp) < 0) goto fail;
        return ds;
    }
    sp->valid = malloc(sizeof(int) * (size_t)(ds->n_items > 0 ? ds->n_items : 1));
    sp->train = malloc(sizeof(int));
    if (!sp->valid || !sp->train) {
        sn_error("out of memory");
        goto fail;
    }
    for (int i = 0; i < ds->n_items; i++) sp->valid[i] = i;
    sp->n_valid = ds->n_items;
    return ds;
fail:
    ds_split_free(sp);
    ds_free(ds);
    return NULL;
}

void evaluate_free(evaluation *ev) {
    free(ev->probs);
    for (int g = 0; g < ev->n_groups; g++) metrics_group_free(&ev->groups[g]);
    memset(ev, 0, sizeof *ev);
}

/* member m's calibration from its plain-view logits[n_valid x C] (see evaluate.h) */
static int member_calibration(const classifier *m, const dataset *ds, const ds_split *sp, const float *logits,
                              calibration_stats cal[3]) {
    const int n = sp->n_valid;
    const uint8_t **hot = malloc(sizeof(uint8_t *) * ((size_t)n + 1));
    if (!hot) return sn_error("out of memory");
    for (int i = 0; i < n; i++) hot[i] = ds_hot(ds, sp->valid[i]);
    double fit = calibration_fit(n, m->n_classes, logits, hot, classifier_is_multi(m));
    int rc = calibration_measure(m, n, logits, hot, 1, METRICS_ECE_BINS, &cal[0]) < 0 ||
                     calibration_measure(m, n, logits, hot, m->temperature, METRICS_ECE_BINS, &cal[1]) < 0 ||
                     calibration_measure(m, n, logits, hot, fit, METRICS_ECE_BINS, &cal[2]) < 0
                 ? -1 : 0;
    free(hot);
    return rc;
}

/* each member's figures into ev->member, the mean of their probabilities into ev->probs and
 * its figures into ev->mean */
static int score_members(ensemble *e, dataset *ds, const ds_split *sp, const learner_opts *lo, int tta,
                         evaluation *ev) {
    const size_t np = (size_t)sp->n_valid * ds->n_classes;
    float *one = malloc(sizeof(float) * (np ? np : 1)), *logits = malloc(sizeof(float) * (np ? np : 1));
    int rc = one && logits ? 0 : sn_error("out of memory");
    for (int i = 0; i < e->n && rc == 0; i++) {
        learner *l = learner_create(e->members[i], ds, sp, lo);
        if (!l || learner_validate_logits(l, e->members[i]->size, tta, &ev->member[i], one, logits) < 0 ||
            member_calibration(e->members[i], ds, sp, logits, ev->cal[i]) < 0) {
            if (e->n > 1) sn_error_prefix("%s", e->paths[i]);
            learner_free(l);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < np; k++) ev->probs[k] += one[k];
        if (i == e->n - 1) {
            for (size_t k = 0; k < np; k++) ev->probs[k] /= (float)e->n;
            if (e->n > 1 && learner_score(l, ev->probs, &ev->mean) < 0) rc = -1;
        }
        learner_free(l);
    }
    free(one);
    free(logits);
    if (rc < 0) return -1;
    if (e->n == 1) {
        ev->mean = ev->member[0];
        return 0;
    }
    double loss = 0;
    for (int i = 0; i < sp->n_valid; i++)
        loss += metrics_image_loss(ds->n_classes, ev->probs + (size_t)i * ds->n_classes, ds_hot(ds, sp->valid[i]),
                                   ds->kind == DS_MULTI);
    ev->mean.loss = loss / sp->n_valid;
    return 0;
}

/* the confusion matrix and per-class figures of each label group (or the single label) */
static int score_groups(const classifier *m, const dataset *ds, const ds_split *sp, evaluation *ev) {
    const int n = sp->n_valid, ng = m->n_groups > 0 ? m->n_groups : (ds->kind == DS_SINGLE ? 1 : 0);
    const float **rows = malloc(sizeof(float *) * (size_t)(n > 0 ? n : 1));
    const uint8_t **hot = malloc(sizeof(uint8_t *) * (size_t)(n > 0 ? n : 1));
    int rc = 0;
    if (!rows || !hot) rc = sn_error("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        rows[i] = ev->probs + (size_t)i * ds->n_classes;
        hot[i] = ds_hot(ds, sp->valid[i]);
    }
    for (int g = 0; rc == 0 && g < ng; g++) {
        int lo = m->n_groups ? m->group_lo[g] : 0, hi = m->n_groups ? m->group_hi[g] : m->n_classes;
        rc = metrics_group_score(n, rows, hot, lo, hi, &ev->groups[g]);
        if (rc == 0) ev->n_groups = g + 1;
    }
    if (rc == 0) {
        metrics_calibration cal;
        if (classifier_is_multi(m)) metrics_tag_calibration(n, rows, hot, 0, m->n_classes, METRICS_ECE_BINS, &cal);
        else metrics_top1_calibration(n, rows, hot, 0, m->n_classes, METRICS_ECE_BINS, &cal);
        ev->ece = cal.ece;
    }
    free(rows);
    free(hot);
    return rc;
}

int evaluate_run(ensemble *e, dataset *ds, const ds_split *sp, const learner_opts *opts, int tta, evaluation *ev) {
    memset(ev, 0, sizeof *ev);
    const classifier *m = e->members[0];
    learner_opts lo = *opts;
    lo.quiet = true;
    lo.progress = false;
    lo.run_dir = NULL;
    lo.thresh = m->threshold > 0 ? m->threshold : lo.thresh;
    ev->thresh = lo.thresh;
    ev->n_images = sp->n_valid;
    ev->n_members = e->n;
    const size_t np = (size_t)sp->n_valid * ds->n_classes;
    ev->probs = calloc(np ? np : 1, sizeof(float));
    if (!ev->probs) return sn_error("out of memory");
    if (score_members(e, ds, sp, &lo, tta, ev) < 0 || score_groups(m, ds, sp, ev) < 0) {
        evaluate_free(ev);
        return -1;
    }
    return 0;
}
