/* evaluate.c - scoring a classifier or an ensemble on labelled images (see evaluate.h). */
#include "train/evaluate.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/shift.h"

/* a model's labelling as a data-set scheme (see evaluate.h), with its storage */
typedef struct {
    ds_scheme s;
    const char *gn[MODEL_MAX_GROUPS];
    int *group;
    char task[64], pattern[512], source[4200];
} model_scheme;

/* a string field of the model's training history into out (cap bytes); false when absent */
static bool history_string(const classifier *m, const char *key, char *out, size_t cap) {
    cJSON *h = m->history ? cJSON_Parse(m->history) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, key);
    bool ok = cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < cap;
    if (ok) snprintf(out, cap, "%s", v->valuestring);
    cJSON_Delete(h);
    return ok;
}

static int model_scheme_init(model_scheme *ms, const classifier *m, const char *path) {
    memset(ms, 0, sizeof *ms);
    snprintf(ms->source, sizeof ms->source, "the model %s", path);
    if (!history_string(m, "task", ms->task, sizeof ms->task)) snprintf(ms->task, sizeof ms->task, "%s", m->task);
    if (!history_string(m, "pattern", ms->pattern, sizeof ms->pattern) && m->n_groups > 1) {
        for (int g = 0; g < m->n_groups; g++) { /* the Style naming: {brand}_{product}_{n}.png */
            size_t L = strlen(ms->pattern);
            snprintf(ms->pattern + L, sizeof ms->pattern - L, "{%s}_", m->group_names[g]);
        }
        strcat(ms->pattern, "{n}.png");
    }
    if (m->n_groups > 1) {
        if (!(ms->group = malloc(sizeof(int) * (size_t)m->n_classes))) return sn_error("out of memory");
        for (int g = 0; g < m->n_groups; g++) {
            ms->gn[g] = m->group_names[g];
            for (int c = m->group_lo[g]; c < m->group_hi[g]; c++) ms->group[c] = g;
        }
    }
    ms->s = (ds_scheme){.kind = classifier_is_multi(m) ? DS_MULTI : DS_SINGLE, .n_classes = m->n_classes,
                        .classes = m->classes, .group = ms->group, .n_groups = ms->group ? m->n_groups : 0,
                        .group_names = ms->gn, .task = ms->task, .pattern = ms->pattern[0] ? ms->pattern : NULL,
                        .source = ms->source};
    return 0;
}

/* fold pick->fold of pick->folds cross-validation folds of ds as sp's validation share; 0 or -1 */
static int pick_fold(const dataset *ds, const evaluate_pick *pick, ds_split *sp) {
    if (pick->valid_pct > 0) return sn_error("cross-validation folds and a validation share are not both picked");
    if (pick->folds < 2 || pick->fold < 1 || pick->fold > pick->folds)
        return sn_error("fold %d of %d folds: the folds are 2 or more, the fold one of 1 to their number", pick->fold,
                        pick->folds);
    int *fold_of = malloc(sizeof(int) * (size_t)(ds->n_items ? ds->n_items : 1));
    if (!fold_of) return sn_error("out of memory");
    int r = ds_make_folds(ds, pick->seed, pick->folds, fold_of);
    if (r == 0) r = ds_fold_split(ds, fold_of, pick->fold - 1, sp);
    free(fold_of);
    return r < 0 ? sn_error_prefix("%s", ds->root) : 0;
}

dataset *evaluate_open_data(const ensemble *e, ds_options o, const evaluate_pick *pick, ds_split *sp) {
    memset(sp, 0, sizeof *sp);
    const classifier *m = e->members[0];
    model_scheme ms;
    dataset *ds = NULL;
    if (model_scheme_init(&ms, m, e->paths[0]) < 0) goto fail;
    o.scheme = &ms.s;
    if (!(ds = ds_open(&o))) goto fail;
    ds_decode_opts dd = {.max_side = ensemble_max_size(e) * 5 / 4};
    if (classifier_check_classes(m, e->paths[0], ds) < 0 || ds_decode(ds, &dd) < 0) goto fail;
    const int picked = pick->folds > 0       ? pick_fold(ds, pick, sp)
                       : pick->valid_pct > 0 ? ds_make_split(ds, pick->seed, pick->valid_pct, true, sp)
                                             : ds_split_all(ds, true, sp);
    if (picked < 0) goto fail;
    free(ms.group);
    return ds;
fail:
    free(ms.group);
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

int evaluate_shifted(ensemble *e, const dataset *ds, const ds_split *sp, const learner_opts *opts, int tta,
                     evaluation *ev) {
    memset(ev, 0, sizeof *ev);
    dataset *sds = shift_dataset(ds, sp->valid, sp->n_valid, SHIFT_SEED);
    ds_split all;
    if (!sds || ds_split_all(sds, true, &all) < 0) {
        ds_free(sds);
        return -1;
    }
    int r = evaluate_run(e, sds, &all, opts, tta, ev);
    ds_split_free(&all);
    ds_free(sds);
    return r;
}
