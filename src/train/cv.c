/* cv.c - K-fold cross-validation: the recipe per fold, the mean and spread of the figures (see cv.h). */
#include "train/cv.h"
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "dist/dist.h"

int cv_run_fold(dataset *ds, const int *fold_of, int fold, const recipe_opts *o, const cv_opts *co, cv_fold *r) {
    memset(r, 0, sizeof *r);
    r->fold = fold;
    ds_split sp;
    if (ds_fold_split(ds, fold_of, fold, &sp) < 0) return -1;
    r->n_train = sp.n_train;
    r->n_valid = sp.n_valid;
    recipe_opts fo = *o;
    fo.shifted = co && co->shifted;
    fo.lo.run_dir = NULL;
    fo.lo.stop_after = 0;
    classifier *m = recipe_model(ds, &fo, fo.sizes[0]);
    int rc = m ? recipe_run(m, ds, &sp, &fo, &r->res) : -1;
    if (rc == 0 && co && co->save && dist_rank() == 0) rc = classifier_save(m, co->save); /* rank 0 writes */
    classifier_free(m);
    ds_split_free(&sp);
    return rc < 0 ? sn_error_prefix("fold %d", fold + 1) : 0;
}

const eval_result *cv_figures(const cv_fold *f, cv_kind kind) {
    return kind == CV_TTA ? &f->res.tta : kind == CV_SHIFTED ? &f->res.shifted : &f->res.plain;
}

/* the metrics of an eval_result that are averaged, as pointers; their count */
static int metrics(eval_result *r, double *p[16]) {
    int n = 0;
    p[n++] = &r->loss;
    p[n++] = &r->accuracy;
    p[n++] = &r->fbeta;
    p[n++] = &r->best_fbeta;
    p[n++] = &r->all_right;
    for (int g = 0; g < 8; g++) p[n++] = &r->group_acc[g];
    return n;
}

void cv_summary(const cv_fold *folds, int n, cv_kind kind, eval_result *mean, eval_result *sd) {
    memset(mean, 0, sizeof *mean);
    memset(sd, 0, sizeof *sd);
    if (n <= 0) return;
    double *pm[16], *ps[16], thresh = 0, thresh2 = 0;
    const int k = metrics(mean, pm);
    metrics(sd, ps);
    for (int i = 0; i < n; i++) {
        eval_result e = *cv_figures(&folds[i], kind);
        double *pe[16];
        metrics(&e, pe);
        for (int j = 0; j < k; j++) *pm[j] += *pe[j] / n;
        thresh += e.best_thresh / (double)n;
        mean->n += e.n;
    }
    for (int i = 0; i < n; i++) {
        eval_result e = *cv_figures(&folds[i], kind);
        double *pe[16];
        metrics(&e, pe);
        for (int j = 0; j < k; j++) *ps[j] += (*pe[j] - *pm[j]) * (*pe[j] - *pm[j]);
        thresh2 += (e.best_thresh - thresh) * (e.best_thresh - thresh);
    }
    for (int j = 0; j < k; j++) *ps[j] = n > 1 ? sqrt(*ps[j] / (n - 1)) : 0;
    mean->best_thresh = (float)thresh;
    sd->best_thresh = (float)(n > 1 ? sqrt(thresh2 / (n - 1)) : 0);
    mean->n_groups = sd->n_groups = cv_figures(&folds[0], kind)->n_groups;
    sd->n = mean->n;
}
