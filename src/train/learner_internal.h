/* learner_internal.h - what the learner's files share: the learner itself and its helpers.
 * Not an interface of the library (learner.h is).
 *
 *   learner.c             create/free, notes, batch buffers and loaders, the loss, targets,
 *                         precomputed activations, the history file's rows, events
 *   learner_fit.c         learner_fit: phases, epochs, mixup and label smoothing
 *   learner_valid.c       learner_validate, learner_score and validation from the cache
 *   learner_lr_find.c     the LR finder
 *   learner_checkpoint.c  checkpoints, learner_resume and the history file on resume
 *   learner_step.c        the training step of any net (learner_step)
 *   learner_dist.c        data parallelism: shares of batches, gradient sums, BN statistics
 */
#ifndef STYLENET_LEARNER_INTERNAL_H
#define STYLENET_LEARNER_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdio.h>
#include "train/learner.h"

struct learner {
    classifier *model;
    net *net;
    dataset *ds;
    ds_split split;
    learner_opts o;             /* o.batch: the batch trained with (the training share when smaller) */
    int batch_asked;            /* > o.batch: the batch the options asked for (said once, then 0) */
    optim *opt;
    loader *train_aug, *train_plain, *valid, *tta;
    float *x, *t, *dl, *dl2, *probs;
    float *xmix, *tmix;         /* mixup: the batch before blending */
    size_t xmix_floats;
    bool soft;                  /* the batch's targets are soft (mixup): single-label uses CE on them */
    int *y;
    size_t x_floats;            /* capacity of x */
    int C;                      /* classes */
    bool multi;
    int n_groups, bounds[9];
    long iter;                  /* optimiser steps so far */
    int epoch;                  /* epochs completed (all phases) */
    int phase_idx;              /* learner_fit calls so far */
    int cur_phase;              /* index of the phase being trained */
    int resume_phase, resume_epoch; /* from a checkpoint: epochs done in that phase */
    cJSON *history, *notes;
    double seconds;
    FILE *hist;                 /* run_dir/history.jsonl, appended to */
    bool hist_started;          /* its rows before this run are settled (emptied, or cut at the checkpoint) */
    /* precompute */
    int cache_node;             /* node whose output is cached (-1: not possible) */
    size_t cache_dim;
    float *feat_train, *feat_valid;
    int feat_size;              /* image size the features were computed at (0: none) */
    struct learner_dist *dist;  /* data parallelism over processes (NULL: one process) */
};

double learner_now(void);
/* buffers for batches of `size`, and the net's input at that size (progressive resizing) */
int learner_ensure_buffers(learner *l, int size);
/* a loader over idx (train or valid), created on first use in *slot, moved to size and epoch */
loader *learner_loader(learner *l, loader **slot, const int *idx, int n, bool augment, bool train, int size,
                       int epoch);
/* the loss of n rows of logits against l->t / l->y; its gradient into dl unless dl is NULL */
float learner_batch_loss(learner *l, int n, const float *logits, float *dl);
/* targets of dataset item `item` into row r of l->t / l->y */
void learner_set_target(learner *l, int r, int item);
/* precomputed activations of the training and validation images at size (once per size) */
int learner_ensure_features(learner *l, int size);
/* the cache node's input rows 0..n from the precomputed training features perm[first..first+n) */
void learner_cached_batch(learner *l, const int *perm, long first, int n);
/* seeded permutation of 0..n-1 for an epoch */
void learner_epoch_perm(uint64_t seed, int epoch, int *perm, int n);
/* learner_step on the batch in l->x (or the cache) with the learner's loss; -1 (sn_error) */
int learner_train_step(learner *l, int n, bool from_cache, float *loss);
/* the number of training batches of an epoch; on the first training call, the warning that
 * the batch was made smaller; -1 (sn_error) with no batch at all */
long learner_batches(learner *l);
/* writes row to the history file (learner_history_append); keep: also into l->history (which
 * then owns it), else freed, even when the write fails; 0, or -1 with the error */
int learner_log(learner *l, cJSON *row, bool keep);
/* text and a newline appended to the open history file and flushed; 0, or -1 with an error naming
 * the file and the system's reason (a failed or short write, e.g. "No space left on device") */
int learner_history_append(learner *l, const char *text);
/* the history file cut to its first `bytes` (rows after them dropped); later rows are appended */
int learner_history_cut(learner *l, long bytes);
/* events */
void learner_report_progress(const learner *l, const char *what, int done, int total, double t0, int images);
void learner_report_epoch(const learner *l, const char *phase, int size, double train_loss, const eval_result *r,
                          double secs);
/* validation metrics straight from the precomputed activations */
int learner_validate_cached(learner *l, eval_result *r);
/* checkpoint.safetensors after an epoch; phase_epochs_done: epochs of the current phase done */
int learner_save_checkpoint(learner *l, int phase_epochs_done);

/* data parallelism (learner_dist.c); each is a no-op (or the whole) with one process */
int learner_dist_setup(learner *l);            /* in learner_create: hooks, rank 0's weights; -1 */
void learner_dist_free(learner *l);
/* this process's share [*lo, *lo + *n) of a batch of n_all */
void learner_dist_share(const learner *l, int n_all, int *lo, int *n);
/* before a step on this process's n rows of a batch of n_all: the buckets start afresh */
void learner_dist_begin(learner *l, int n, int n_all);
/* the loss gradient dl of n rows scaled by n / n_all (the sum over processes: the batch's mean) */
void learner_dist_scale(learner *l, int n, int n_all, float *dl);
/* learner_loss.reduce: the remaining gradients summed, every sum waited for */
void learner_dist_reduce(void *ctx);
/* the whole batch's mean loss from this process's mean over its n rows */
double learner_dist_loss(learner *l, int n, int n_all, double loss);
/* the running statistics of the batch norms that train with batch statistics, averaged over the
 * processes (per-process statistics; not with sync_bn, where they agree) */
int learner_dist_average_bn(learner *l);
/* sums in place across processes (rows each process filled, zeros elsewhere: a gather) */
void learner_dist_sum(const learner *l, float *buf, size_t n);
void learner_dist_sum_d(const learner *l, double *buf, size_t n);
/* the processes (0: one process, or no step since the last call), and per step since the last
 * call the bytes of gradients summed and the seconds spent waiting for the sums after backward */
int learner_dist_epoch_stats(learner *l, double *bytes, double *wait_s);
#endif
