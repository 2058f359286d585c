/* ensemble.h - several classifiers scored as one: the mean of their probabilities.
 *
 * Contract
 * - ensemble_load(paths, n, opts) loads n (1..ENSEMBLE_MAX) model files with the same options and
 *   checks that each can be averaged with the first (classifier_compatible: the same task, the
 *   same classes in the same order, the same label groups); their weights are frozen (scoring
 *   only).  NULL with an error naming the file (both files when they differ).  One model is an
 *   ensemble of one: its probabilities are the model's own.
 * - Each member sees a photo its own way (input size, normalisation); the ensemble's probability
 *   of a class is the sum of the members' probabilities, in member order, divided by n.
 * - ensemble_reserve(e, batch) sizes every member's net and the scratch buffers for `batch`
 *   photos; ensemble_predict(e, ims, ok, n, probs) scores n <= batch decoded photos: probs[i]
 *   for each ims[i] with ok[i] (rows of the others are left as they are).  Every forward pass
 *   runs the reserved batch (unused slots zero), so a photo's probabilities do not depend on how
 *   many others share its batch.
 */
#ifndef STYLENET_ENSEMBLE_H
#define STYLENET_ENSEMBLE_H
#include <stdbool.h>
#include "classifier/classifier.h"

#define ENSEMBLE_MAX 16 /* models at most */

typedef struct {
    int n;
    classifier *members[ENSEMBLE_MAX]; /* members[0] names the classes, groups and task */
    const char *paths[ENSEMBLE_MAX];  /* borrowed from the caller */
    int batch;                        /* reserved by ensemble_reserve */
    float *x, *one, *sum;             /* scratch: inputs, one member's probabilities, their sum */
} ensemble;

ensemble *ensemble_load(const char *const *paths, int n, const classifier_load_opts *opts);
void ensemble_free(ensemble *e);
/* the largest input side of the members */
int ensemble_max_size(const ensemble *e);
int ensemble_reserve(ensemble *e, int batch);
int ensemble_predict(ensemble *e, const image *ims, const bool *ok, int n, float *probs);
#endif
