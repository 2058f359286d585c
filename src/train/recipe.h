/* recipe.h - the transfer-learning workflow end to end, as the `train` verb runs it.
 *
 * recipe_model(): a new classifier for a data set: an architecture's body (from pretrained
 * weights: a stylenet model file, a torchvision/timm state dict in safetensors, or the TFLite
 * MobileNetV2; or randomly initialised) under a fastai head with the data set's classes, and the
 * model metadata (classes, label groups, task, normalisation for those weights).
 *
 * recipe_run(): the named recipe as a list of phases (learner.h):
 *   "seed"  the reference workflow: LR finder on the frozen body; head on precomputed
 *           activations; head with augmentation; unfreeze; SGDR cycles of 1, 2, 4, 8, 16 epochs with
 *           differential learning rates (1e-4, 3e-4, 1e-3, or lr/9, lr/3, lr with lr_div 3) and
 *           augmentation, with progressive resizing (sizes[0] for the first cycles, sizes[1] for
 *           the last; `train` picks them per body with recipe_default_sizes); TTA evaluation.
 *   "fine-tune"  fastai v2's fine_tune: one frozen one-cycle epoch, then one-cycle over all
 *           layers for `epochs` epochs (lr/2 peak, differential).
 *   "scratch"  no pretrained weights: one-cycle over all layers for `epochs` epochs.
 * Each recipe ends by fitting the model's temperature on the validation photos (calibrate, the
 * default; recipe_calibrate) and then scores them: the final metrics, the history and the saved
 * model all use the calibrated probabilities.
 *
 * recipe_calibrate(l, m, ds, split, size, cal): the validation photos' logits at `size` (plain
 * view), the temperature minimising their NLL (classifier/calibration.h) set in m->temperature,
 * and their NLL, Brier and ECE at T = 1 (cal[0]) and at the fitted T (cal[1]).
 * Every number has a flag (recipe_opts); the recipe keeps what worked on the Style set: the fifth
 * cycle (16 epochs) raised TTA F2, brand and both-right on each of three training seeds and left
 * product equal or higher; the grouped loss (learner_opts.group_ce), mixup, higher rates and a
 * final size of 192 did not help.  recipe_defaults() turns on the augmentation for photos unlike
 * the catalogue's (aug_shift_preset): on the same 3 of 5 cross-validation folds of the Style set it
 * raised F2, brand, product and both-right on the shifted stress set by 16-21 points, for 10 points
 * of brand on the catalogue photos (README, "Photos in the wild").
 */
#ifndef STYLENET_RECIPE_H
#define STYLENET_RECIPE_H
#include <stdbool.h>
#include "data/dataset.h"
#include "classifier/calibration.h"
#include "classifier/classifier.h"
#include "train/learner.h"

typedef struct {
    const char *recipe;      /* "seed" | "fine-tune" | "scratch" */
    const char *arch;        /* architecture (needed without pretrained weights or for state dicts) */
    const char *pretrained;  /* weights file or NULL */
    int sizes[2];            /* progressive resizing: first and final size */
    float lr;                /* peak rate of the head; <= 0 = from the LR finder */
    float lrs[3];            /* per-group rates of the unfrozen phases (1e-4, 3e-4, 1e-3) */
    float lr_div;            /* > 0: instead, groups get lr/div^2, lr/div, lr of the head's rate */
    int head_epochs;         /* precomputed head epochs (2) */
    int head_aug_epochs;     /* frozen epochs with augmentation (1) */
    int cycles, cycle_len, cycle_mult; /* SGDR over all layers: 5, 1, 2 (1+2+4+8+16 epochs) */
    int resize_after;        /* cycles at sizes[0] before switching to sizes[1] (3) */
    int epochs;              /* fine-tune / scratch */
    float ps;                /* head dropout (0.25; fastai 0.5; ps/2 before the first linear) */
    int tta;                 /* augmented views added at evaluation (4) */
    int test_size;           /* side the finished model is scored at and saved for (its `size`: eval,
                                predict, serve); 0 = the final training size */
    int64_t split_seed;      /* seed of the validation split; -1: the training seed lo.seed */
    bool calibrate;          /* fit the temperature on the validation photos at the end (true) */
    const char *valid_data;  /* a folder scored instead of a split (every photo of the data trains); NULL: none */
    bool shifted;            /* also score the shifted stress version of the validation photos (data/shift.h) */
    learner_opts lo;
} recipe_opts;

recipe_opts recipe_defaults(void);
/* the data of a run, as `train` and `lr-find` set it up: opened (dso), decoded large enough for
 * the larger of o->sizes with augmentation's margin, unreadable images reported on stderr, and
 * the stratified split of valid_pct seeded by o->split_seed (or o->lo.seed) into *sp; valid_pct
 * 0: every photo trains (no validation).  With o->valid_data the photos of that folder, read
 * with the data's classes, task and file-name pattern (data/dataset.h, "Fixed classes"), are the
 * validation share and every photo of dso trains.  NULL (sn_error) on failure. */
dataset *recipe_open_data(const ds_options *dso, const recipe_opts *o, float valid_pct, ds_split *sp);
uint64_t recipe_split_seed(const recipe_opts *o);
classifier *recipe_model(const dataset *ds, const recipe_opts *o, int size);
/* o->sizes for o's body when none are asked for: 104,128 (MobileNetV2, ResNet), 128,160
 * (EfficientNet-Lite: measured best on the 150 px Style photos).  The body is o->arch or that of
 * o->pretrained (as recipe_model finds it); -1 with an error if the weights cannot be read */
int recipe_default_sizes(recipe_opts *o);
/* the recipe's LR finder: the body frozen with its batch-norm statistics (or, with unfrozen, every
 * layer trainable, batch norm frozen only with o->lo.freeze_bn), then learner_lr_find_info. */
double recipe_lr_find(learner *l, classifier *m, const recipe_opts *o, bool unfrozen, int size, double start,
                      double end, int n, const char *png, lr_find_info *info);

typedef struct {
    eval_result plain, tta;
    calibration_stats cal[2];  /* validation, plain view: at T = 1, at the fitted T (zeros if not fitted) */
    eval_result shifted;     /* with o->shifted: the stress version of the validation photos, plain */
    double lr;               /* the head learning rate used */
    double seconds;          /* wall time of the whole recipe */
} recipe_result;

/* runs the recipe (resuming from lo.run_dir when a checkpoint is there); fills r: plain, TTA,
 * and with o->shifted the stress version's figures (without validation images r's metrics stay
 * 0, r.plain.n 0, and the history has no results).  Returns 0,
 * 1 when stopped by lo.stop_after (the checkpoint holds the run), -1 on error */
int recipe_run(classifier *m, dataset *ds, const ds_split *split, const recipe_opts *o, recipe_result *r);
int recipe_calibrate(learner *l, classifier *m, const dataset *ds, const ds_split *split, int size,
                     calibration_stats cal[2]);
/* adds object `key` to o: the loss under loss_key, F-beta and its best threshold (multi-label) or
 * accuracy, each label group's accuracy (named group_names[g], g < r->n_groups) and all-right;
 * the form of `train --json`'s results */
struct cJSON;
void recipe_add_result(struct cJSON *o, const char *key, const char *loss_key, const eval_result *r, bool multi,
                       char *const *group_names);
#endif
