/* run.h - reading a training run directory (what `stylenet train --run-dir DIR` leaves) for reports.
 *
 * Contract
 * - run_open(dir) reads
 *     DIR/history.jsonl          required: per-batch rows {"iter","loss","lr"}, per-epoch rows
 *                                {"epoch","phase","size","train_loss","valid_loss", metrics, "lr",
 *                                "lrs", "iter", "seconds", ...} and LR-finder rows {"lr_find_lr", ...}
 *     DIR/run.json               optional (written when the run finished): classes, label groups, task,
 *                                threshold, temperature,
 *                                model, data, final metrics with and without TTA, wall time
 *     DIR/valid_predictions.jsonl  optional (idem): per validation image its path, true classes,
 *                                probabilities and loss (train/predictions.h)
 * - Errors (NULL, sn_error naming the file and line): DIR missing or not a folder; no
 *   history.jsonl; a line of a file that is not a JSON object or lacks what its kind needs (a batch
 *   row without a numeric loss, a prediction with the wrong number of probabilities or a class
 *   index out of range...); run.json without classes.
 * - Not errors: a run that did not finish (no run.json / predictions: each absent thing adds a
 *   line to r->missing saying what the report lacks); a last history line cut short without its
 *   newline (the run killed while writing it: ignored, with a line in r->warnings).
 * - Unknown row kinds are skipped (newer writers may add some).
 */
#ifndef STYLENET_RUN_H
#define STYLENET_RUN_H
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double iter, loss, lr;     /* lr: NAN when absent */
} run_batch;

typedef struct {
    const cJSON *row;          /* the row as read (owned by run_log.epoch_rows) */
    int epoch;
    const char *phase;         /* "" when absent */
    int size;
    double iter;               /* optimiser steps at the end of the epoch; NAN when unknown */
    double train_loss, valid_loss, lr, seconds; /* NAN when absent */
    double lrs[3];             /* peak rate per layer group; NAN when absent */
} run_epoch;

typedef struct {
    int item;
    char *path, *rel;
    uint8_t *hot;              /* n_classes 0/1 */
    float *probs;              /* n_classes */
    double loss;
    int line;                  /* line in the file */
} run_pred;

typedef struct {
    char dir[4096];
    /* history.jsonl */
    int n_batches;
    run_batch *batches;
    int n_epochs;
    run_epoch *epochs;
    cJSON *epoch_rows;         /* array of the epoch rows */
    cJSON *lr_find;            /* the last LR-finder row, or NULL */
    double *seen_iter;         /* internal: last batch iteration read before each epoch row */
    /* run.json (NULL when absent) and what it says */
    cJSON *run;
    bool multi;
    int n_classes;
    const char **classes;      /* point into run */
    int n_groups;              /* 0: no label groups */
    char group_names[8][64];
    int group_lo[8], group_hi[8];
    double threshold;          /* multi-label decision threshold (0.2 when unknown) */
    double temperature;        /* the model's temperature (the probabilities are calibrated by it; 1 when unknown) */
    /* valid_predictions.jsonl */
    int n_preds;
    run_pred *preds;
    /* what the report must do without, and what was odd */
    int n_missing, n_warnings;
    char **missing, **warnings;
} run_log;

run_log *run_open(const char *dir);
void run_free(run_log *r);
#endif
