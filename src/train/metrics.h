/* metrics.h - what a classifier got right.
 *
 * scores[n, c] are logits or probabilities (only their order matters, except for thresholds,
 * which apply to probabilities).  targets: class indices (single-label) or multi-hot [n, c].
 * - accuracy: argmax == target.
 * - fbeta_samples: fastai v1's `fbeta` (the reference's "multi-label accuracy"): per image
 *   precision and recall of {probs > thresh} against the true tags, F-beta of the two, averaged
 *   over images; beta 2 weighs recall.  best_threshold searches 0.01..0.99 for the best.
 * - group_argmax / group_accuracy: for multi-label tags made of groups with exactly one true tag
 *   each (Style: 7 brands then 10 products), the prediction of a group is its highest tag; both
 *   right = every group right.
 * - confusion[k*k] (row = truth, column = prediction) and per-class precision and recall from it
 *   (0 when the denominator is 0).
 */
#ifndef STYLENET_METRICS_H
#define STYLENET_METRICS_H

double accuracy(int n, int c, const float *scores, const int *target);
double fbeta_samples(int n, int c, const float *probs, const float *target, float thresh, float beta);
float best_threshold(int n, int c, const float *probs, const float *target, float beta, double *best_f);
int group_argmax(const float *row, int lo, int hi);      /* index in [lo, hi) of the maximum */
double group_accuracy(int n, int c, const float *scores, const float *target, int lo, int hi);
/* fraction of images whose every group [bounds[g], bounds[g+1]) is right */
double groups_all_right(int n, int c, const float *scores, const float *target, const int *bounds, int n_groups);
void confusion(int n, int k, const int *pred, const int *truth, int *cm);
void precision_recall(int k, const int *cm, double *precision, double *recall);
/* classes lo..hi-1 by probability, highest first (ties: lower index first): order[0..hi-lo) */
typedef struct {
    int idx;
    float p;
} ranked_class;
void rank_classes(const float *p, int lo, int hi, ranked_class *order);
#endif
