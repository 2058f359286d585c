/* learner.h - fastai's Learner in C: a model, a data set and its split, an optimiser, and the
 * loops that train, validate, find a learning rate and checkpoint.
 *
 * Contract
 * - learner_create(model, ds, split, opts): the model's net must end in n_classes outputs of
 *   the data set; single-label data train with softmax cross-entropy, multi-label with sigmoid
 *   BCE (plus, with opts.group_ce > 0 and label groups, that weight times the mean over the
 *   groups of each group's softmax cross-entropy: each photo has exactly one tag per group).
 *   The learner borrows model, ds and split (the caller frees them after learner_free).
 *   A training share smaller than opts.batch (but not empty) trains, and validates, in batches
 *   of the whole training share; the first fit or LR finder says so (a warning event).
 * - A run is a list of phases (learner_fit): each names its epochs, image size, whether the
 *   body is frozen (layer groups 0 and 1: no gradients, batch norm in eval mode), whether
 *   training images are augmented, the schedule (SGDR with cycle length and multiplier, or
 *   one-cycle) and the peak learning rate of each layer group (differential rates).
 *   A frozen phase without augmentation "precomputes": the body runs once over the training
 *   and validation images (eval mode, deterministic) and the head trains on the cached
 *   activations, so its epochs take seconds.
 * - Reproducible: batches, augmentation and dropout come from counter-based randomness keyed by
 *   (seed, epoch, item) and (seed, step, node); the same seed gives the same weights.
 * - Checkpoints (opts.run_dir): after every epoch checkpoint.safetensors is written atomically
 *   with the weights, the optimiser state, where the run is (phase, epoch, iteration, the
 *   history so far), the architecture and a checksum of it all; learner_resume() restores it,
 *   and re-running the same phases then skips what was done and reaches bitwise the same
 *   weights as an uninterrupted run, wherever the process was killed (tests/faults).
 * - A split without validation images trains all the same: the epochs' rows then carry the
 *   training loss alone (learner_validate refuses).
 * - History: run_dir/history.jsonl gets one JSON object per optimiser step ({"iter", "loss",
 *   "lr"}), per epoch ({"epoch", ..., "iter": steps at its end}) and per LR-finder sweep
 *   ({"lr_find_lr", ...}); learner->history holds the epoch and sweep rows as a cJSON array.  A
 *   run that does not resume starts the file afresh; a resumed run keeps the file's rows up to
 *   the checkpoint (step rows included) and drops the rest (rows of steps after it, a row cut
 *   short by a kill).
 * - Output: the library writes nothing.  opts.events (NULL: silent) receives a row per epoch
 *   (unless opts.quiet), batch progress (with opts.progress) and message lines (notes of the
 *   run's results unless opts.quiet, and warnings); the CLI prints them (src/cli/progress.c).
 * - learner_step() is the training step itself, usable on any net (bench/bench_net.c times it).
 * - Data parallelism: in a program started by mpirun (dist/dist.h) the learner trains on every
 *   process at once.  opts.batch is the whole batch of all processes, the learning rates mean
 *   what they mean on one process, and a batch's images are the single-process ones in the same
 *   order: process r decodes only positions [B*r/N, B*(r+1)/N) (dist_share), their augmentation
 *   keyed by (seed, epoch, item) as always, dropout and drop-path masks those of their position
 *   in the whole batch.  Each process scales its loss gradient by its share of the batch; the
 *   gradients are summed across processes in buckets of 4 MiB started from net_backward's hook
 *   as the gradients at the end of the arena become final, the remainder after backward, so
 *   every process takes the same optimiser step.  Batch norm uses each process's share for its
 *   batch statistics (running statistics averaged over the processes at the end of every epoch),
 *   or, with opts.sync_bn, the whole batch's (kernels/batchnorm.h: identical to one process up to
 *   summation order).  Mixup blends within a process's share.  Validation, TTA, precomputed
 *   activations and learner_validate spread their images over the processes and gather the
 *   rows, so every process holds every figure.  Rank 0 alone writes files (history,
 *   checkpoints, the LR finder's plot) and sends events; a checkpoint resumes on any number of
 *   processes.  An epoch's row gets "ranks", "allreduce_bytes_per_step" and
 *   "allreduce_wait_s_per_step" (the wait for the sums after backward, what it did not hide).
 */
#ifndef STYLENET_LEARNER_H
#define STYLENET_LEARNER_H
#include <stdbool.h>
#include <stdint.h>
#include "data/dataset.h"
#include "data/loader.h"
#include "classifier/classifier.h"
#include "train/optim.h"

typedef enum { SCHED_SGDR, SCHED_ONECYCLE, SCHED_CONSTANT } sched_kind;

typedef struct {
    const char *name;        /* shown in the table, e.g. "head", "all" */
    int epochs;              /* SGDR: derived from cycles when 0 */
    int size;                /* image side */
    bool frozen;             /* body frozen (only the head trains) */
    bool augment;
    sched_kind sched;
    int cycles, cycle_len, cycle_mult; /* SGDR */
    float lrs[3];            /* peak rate of layer groups 0, 1, 2 */
} phase;

typedef struct {
    double loss;
    double accuracy;         /* single-label */
    double fbeta;            /* multi-label, at opts.thresh */
    float best_thresh;       /* multi-label: threshold with the best F-beta on these images */
    double best_fbeta;
    int n_groups;
    double group_acc[8];     /* per label group (Style: brand, product) */
    double all_right;        /* every group right */
    int n;
} eval_result;

/* an epoch's row of the results table */
typedef struct {
    int epoch;               /* epochs completed in the run, this one included */
    const char *phase;       /* the phase's name ("" when it has none) */
    int size;                /* image side */
    double train_loss;       /* mean over the epoch's batches */
    const eval_result *valid; /* NULL when the split has no validation images */
    double seconds;          /* the epoch's wall time, validation included */
    bool multi;              /* multi-label (F-beta) or single-label (accuracy) */
    int n_groups;            /* label groups scored (valid->group_acc), named group_names[g] */
    char *const *group_names;
} learner_epoch_event;

/* progress through the batches of an epoch or of the LR finder's sweep */
typedef struct {
    const char *what;        /* "epoch 3", "lr_find" */
    int done, total;         /* batches */
    int images;              /* images trained on so far */
    double seconds;          /* since `what` began */
    bool end;                /* the LR finder's sweep is over (it may stop before total) */
} learner_progress_event;

typedef enum {
    LEARNER_NOTE,            /* a result of the run ("lr_find: suggested learning rate 0.035") */
    LEARNER_WARNING          /* something changed or left out (images skipped, a smaller batch) */
} learner_msg;

/* callbacks the library calls instead of printing; any may be NULL */
typedef struct {
    void *ctx;
    void (*epoch)(void *ctx, const learner_epoch_event *e);
    void (*progress)(void *ctx, const learner_progress_event *p);
    void (*message)(void *ctx, learner_msg kind, const char *text); /* one line, no newline */
} learner_events;

typedef struct {
    int batch;               /* 32 */
    uint64_t seed;           /* 42 */
    aug_opts aug;
    optim_kind opt;          /* AdamW */
    float wd;                /* 1e-2 */
    bool bn_wd;
    bool freeze_bn;          /* keep the body's BN statistics frozen after unfreezing */
    int n_threads;           /* loader threads (2) */
    float thresh, beta;      /* multi-label: F-beta threshold (0.2) and beta (2) */
    float group_ce;          /* multi-label with label groups: weight of the per-group softmax
                                cross-entropy added to the BCE (kernels/loss.h; 0 = BCE alone) */
    float mixup;             /* > 0: mixup (Zhang et al.; fastai's MixUpCallback) with this Beta
                                alpha in augmented phases: each image and its targets are blended
                                with a seeded partner of the batch, lambda = max(b, 1-b), b ~
                                Beta(alpha, alpha); single-label then trains with soft targets */
    float label_smooth;      /* > 0: label smoothing e of the training targets (learner_fit's steps;
                                not the LR finder, not validation): multi-label BCE targets become
                                t(1-e) + e/2, single-label cross-entropy targets t(1-e) + e/C */
    const char *run_dir;     /* checkpoints and history; NULL = none */
    const learner_events *events; /* where rows, progress and messages go; NULL: nowhere */
    bool quiet;              /* no epoch rows, no notes */
    bool progress;           /* progress events */
    bool sync_bn;            /* data parallelism: batch-norm batch statistics over the whole batch
                                (summed across processes, forward and backward) instead of each
                                process's share */
    int stop_after;          /* > 0: stop (as if killed) once this many epochs are done in all;
                                learner_fit then returns 1.  For tests of --resume. */
} learner_opts;

typedef struct learner learner;

learner_opts learner_defaults(void);
learner *learner_create(classifier *model, dataset *ds, const ds_split *split, const learner_opts *o);
void learner_free(learner *l);

/* trains one phase; 0 done, 1 stopped by opts.stop_after, -1 on error (a bad image with
 * strict data, out of memory, a failed checkpoint write) */
int learner_fit(learner *l, const phase *p);
/* validation metrics at `size` with tta extra augmented views (0 = plain); probs may be NULL,
 * else receives n_valid * n_classes averaged probabilities */
int learner_validate(learner *l, int size, int tta, eval_result *r, float *probs);
/* learner_validate, and the plain view's logits (before the model's temperature) into
 * logits[n_valid * n_classes] when not NULL.  The figures and probabilities are those of the
 * logits divided by the model's temperature (classifier/calibration.h). */
int learner_validate_logits(learner *l, int size, int tta, eval_result *r, float *probs, float *logits);
/* the metrics of given probabilities (n_valid * n_classes, in split order) of the validation
 * images, e.g. the average of several models: everything but the loss, which is left 0 */
int learner_score(learner *l, const float *probs, eval_result *r);
/* LR finder with the current freezing: exponential sweep start..end over up to n iterations,
 * stops when the loss diverges; weights and optimiser state are restored afterwards.
 * Writes the sweep to the history and, when png is not NULL, a plot. Returns the suggested
 * rate (the minimum of the smoothed loss / 10, or the steepest point if lower), or -1. */
double learner_lr_find(learner *l, int size, double start, double end, int n, const char *png);
/* the same, also telling what the sweep found (info may be NULL) */
typedef struct {
    double suggestion;       /* what learner_lr_find returns */
    double min_lr;           /* rate at the minimum of the smoothed loss */
    double steepest_lr;      /* rate at the steepest descent of the smoothed loss */
    double min_loss;         /* the smoothed loss there */
    double last_lr;          /* highest rate tried */
    int iters;               /* iterations run (fewer than n when the loss diverged) */
    int kept;                /* points before the divergence (plotted, in the history) */
    bool diverged;           /* stopped early because the loss diverged */
} lr_find_info;
double learner_lr_find_info(learner *l, int size, double start, double end, int n, const char *png, lr_find_info *info);
/* loads run_dir/checkpoint.safetensors if present: 1 resumed, 0 nothing to resume, -1 error (a
 * file that is not a whole checkpoint, fails its checksum, or is of another architecture,
 * optimiser or set of classes: the message names it); removes the temporary files of a
 * checkpoint write cut short by a kill */
int learner_resume(learner *l);
/* path is a whole checkpoint (it opens, says where its run was, and matches its checksum): 0, or
 * -1 naming the problem */
int learner_check_checkpoint(const char *path);
/* the run so far (epochs, metrics, timings) as JSON text; caller frees */
char *learner_history_json(const learner *l);
/* key/value pairs kept in checkpoints (e.g. the LR finder's suggestion), so a resumed run
 * reuses them */
void learner_set_note(learner *l, const char *key, double value);
bool learner_get_note(const learner *l, const char *key, double *value);
double learner_seconds(const learner *l);   /* wall time spent in fit/validate/lr_find */
/* this process writes the run's files (checkpoints, history, plots, predictions): the only
 * process, or rank 0 of a data-parallel run (see "Data parallelism") */
bool learner_writes(const learner *l);
int learner_batch(const learner *l);        /* the batch it trains with (opts.batch or the training share) */
/* a message line to o->events (printf-style); a note is dropped when o->quiet */
void learner_message(const learner_opts *o, learner_msg kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The training step (learner_step.c, which needs only nn and the optimiser).  loss->fn(ctx, n,
 * logits, dl) returns the loss of n rows of logits and writes its gradient into dl (room for n
 * rows of the net's outputs). */
typedef struct {
    float (*fn)(void *ctx, int n, const float *logits, float *dl);
    void *ctx;
    float *dl;
    void (*reduce)(void *ctx); /* when not NULL: called between net_backward and optim_step (the
                                  gradients summed across processes: learner_dist.c) */
} learner_loss;
/* one optimiser step of m on a batch of n: the forward pass in training mode from the images x
 * (n x the net's input), or, x NULL, from node `first` on (the kept output before it filled by
 * the caller: precomputed activations), then the loss and its gradient, net_zero_grad,
 * net_backward, loss->reduce and optim_step.  *loss_out gets the loss (NaN or infinite when training
 * diverges).  0, or -1 (sn_error: out of memory for activations or gradients). */
int learner_step(net *m, optim *opt, const float *x, int first, int n, const learner_loss *loss, float *loss_out);
#endif
