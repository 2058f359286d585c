/* evaluate.h - a classifier, or an ensemble of them, scored on labelled images (`stylenet eval`).
 *
 * Contract
 * - evaluate_open_data(e, o, &pick, &sp) opens the data set of o labelled with the
 *   models' own classes (data/dataset.h, "Fixed classes": the scheme of the first model: its
 *   classes and label groups, the task its training history records (else "multi" or
 *   "single"), and the file-name pattern it records, else for a model with label groups
 *   "{group1}_{group2}_..._{n}.png", the Style naming, for a folder of photos without class
 *   folders), decodes it large enough for the largest member with the margin
 *   of test-time augmentation (5/4 of the side), and picks the images to score into sp: with
 *   pick.valid_pct > 0 the validation share of the seeded stratified split training makes
 *   (ds_make_split with pick.seed); with pick.folds = K > 0 fold pick.fold (1-based) of the K
 *   stratified folds `stylenet cv` deals with the same seed (ds_make_folds, ds_fold_split: the
 *   photos that fold's model validated on and did not train on; sp.train the other folds); else every image (sp.n_train
 *   0).  NULL with an error naming the file, or the folds when K < 2, the fold is not in 1..K,
 *   or valid_pct is given too.
 * - evaluate_run(e, ds, sp, opts, tta, &ev): each member scored by the learner on sp's
 *   validation images at its own input size, with `tta` augmented views averaged in
 *   (learner_validate): ev.member[i].  The ensemble's probabilities are the members' mean
 *   (classifier/ensemble.h's order: summed in member order, divided by their number) and ev.mean
 *   their metrics (learner_score), with the loss the mean per-image loss of those probabilities
 *   (metrics_image_loss); for one model ev.mean is its own figures.  opts: batch size and seed;
 *   the multi-label threshold is the model's own when it has one (ev.thresh).
 *   Then per label group (the single label of a single-label task; none for multi-label data
 *   without groups) the confusion matrix with per-class precision and recall, in
 *   classifier/metrics.h's conventions: ev.groups[0 .. ev.n_groups).
 *   Calibration (classifier/calibration.h): each member's plain-view logits give ev.cal[i][0]
 *   (T = 1), [1] (the member's own temperature) and [2] (the temperature these photos would fit,
 *   in .temperature); ev.ece is the ECE of the reported probabilities (ev.probs: calibrated,
 *   with TTA, averaged over the members).
 *   Returns 0, or -1 with an error (naming the member's file in an ensemble); evaluate_free
 *   frees what it filled.
 */
#ifndef STYLENET_EVALUATE_H
#define STYLENET_EVALUATE_H
#include "classifier/calibration.h"
#include "classifier/ensemble.h"
#include "classifier/metrics.h"
#include "data/dataset.h"
#include "train/learner.h"

typedef struct {
    int n_images;
    float thresh;                      /* multi-label decision threshold used */
    int n_members;
    eval_result member[ENSEMBLE_MAX];  /* each model on its own */
    eval_result mean;                  /* the ensemble (one model: member[0]) */
    float *probs;                      /* n_images x n_classes: the ensemble's, in split order */
    calibration_stats cal[ENSEMBLE_MAX][3]; /* plain view: T = 1, the model's T, the T fitted here */
    double ece;                        /* of probs */
    int n_groups;
    metrics_group groups[MODEL_MAX_GROUPS];
} evaluation;

/* which photos of the data set are scored (see evaluate_open_data) */
typedef struct {
    float valid_pct;   /* > 0: the validation share of the seeded split */
    int folds, fold;   /* folds > 0: fold `fold` (1-based) of that many cross-validation folds */
    uint64_t seed;     /* the split's or the folds' seed */
} evaluate_pick;

/* the same scoring on the shifted stress version of sp's validation images (data/shift.h, seed
 * SHIFT_SEED; built once here): a proxy for photos taken in the wild */
int evaluate_shifted(ensemble *e, const dataset *ds, const ds_split *sp, const learner_opts *opts, int tta,
                     evaluation *ev);
dataset *evaluate_open_data(const ensemble *e, ds_options o, const evaluate_pick *pick, ds_split *sp);
int evaluate_run(ensemble *e, dataset *ds, const ds_split *sp, const learner_opts *opts, int tta, evaluation *ev);
void evaluate_free(evaluation *ev);
#endif
