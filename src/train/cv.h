/* cv.h - K-fold cross-validation of a training recipe: each fold's figures, and the mean and
 * standard deviation of every metric across the folds.
 *
 * Contract
 *   int *fold_of = ...; ds_make_folds(ds, recipe_split_seed(&o), k, fold_of);   // data/dataset.h
 *   for each fold f to run: cv_fold r; cv_run_fold(ds, fold_of, f, &o, &co, &r);
 *   cv_summary(results, n, CV_TTA, &mean, &sd);
 * - cv_run_fold builds a new model (recipe_model) and runs the recipe (recipe_run) with fold f as
 *   the validation share and the other folds as training: r.res holds the recipe's plain and TTA
 *   figures on the fold.  co->save (may be NULL) receives the trained model (classifier_save).
 *   With co->shifted the model is also scored (plain, at its size) on the shifted stress version
 *   of the fold (recipe_opts.shifted) into r.res.shifted.  The recipe's run_dir is not
 *   used (no checkpoints, no history file).
 * - cv_summary: for one kind of figure (plain, TTA, shifted) of n folds, the mean and the sample
 *   standard deviation (n - 1 in the denominator; 0 for one fold) of each metric of
 *   eval_result: loss, accuracy or F-beta, the best threshold and its F-beta, each label group's
 *   accuracy, all-right.
 * -1 with an error naming the fold on failure.
 */
#ifndef STYLENET_CV_H
#define STYLENET_CV_H
#include <stdbool.h>
#include "train/recipe.h"

typedef enum { CV_PLAIN, CV_TTA, CV_SHIFTED } cv_kind;

typedef struct {
    const char *save;        /* where the fold's model goes; NULL: not saved */
    bool shifted;            /* also score the shifted stress version of the fold */
} cv_opts;

typedef struct {
    int fold;                /* 0-based */
    int n_train, n_valid;
    recipe_result res;       /* plain, TTA and shifted figures, the recipe's learning rate and seconds */
} cv_fold;

int cv_run_fold(dataset *ds, const int *fold_of, int fold, const recipe_opts *o, const cv_opts *co, cv_fold *r);
/* a fold's figures of one kind */
const eval_result *cv_figures(const cv_fold *f, cv_kind kind);
void cv_summary(const cv_fold *folds, int n, cv_kind kind, eval_result *mean, eval_result *sd);
#endif
