/* metrics.h - what a classifier got right: accuracy, F-beta, per-group scores, confusion matrices,
 * and how well its probabilities are calibrated (NLL, Brier, ECE and the reliability bins).
 *
 * scores[n, c] are logits or probabilities (only their order matters, except for thresholds,
 * which apply to probabilities).  targets: class indices (single-label) or multi-hot [n, c]
 * (a tag is true when its target is > 0.5).
 *
 * Conventions (every function here, and so `eval`, `train` and `report` alike)
 * - A prediction is the highest score (ties: the lower index); for a label group [lo, hi) the
 *   highest score within the group.
 * - A label group's true class is the image's true tag in the group (the first, should there be
 *   several).  An image without a true tag in a group is left out of that group's figures
 *   (confusion matrix, precision, recall, accuracy) and out of "all groups right".  Every image
 *   of a grouped data set has exactly one tag per group (data/dataset.h), so this only matters
 *   for hand-made targets.
 * - A ratio whose denominator is zero is NaN ("undefined"): the accuracy of no images, the
 *   recall of a class without images, the precision of a class nothing was predicted as.
 *
 * - metrics_accuracy: argmax == target.
 * - metrics_fbeta_samples: fastai v1's `fbeta` (the reference's "multi-label accuracy"): per image
 *   precision and recall of {probs > thresh} against the true tags (each with fastai's 1e-9 in
 *   the denominator), F-beta of the two, averaged over images; beta 2 weighs recall.
 *   metrics_best_threshold searches 0.01..0.99 for the best.
 * - metrics_group_accuracy / metrics_groups_all_right: for multi-label tags made of groups
 *   (Style: 7 brands then 10 products); all right = every group right.
 * - metrics_confusion[k*k] (row = truth, column = prediction) and per-class precision and recall
 *   from it; metrics_group_score does all of it for one group from probabilities and targets.
 * - metrics_image_loss: one image's loss from its probabilities: mean binary cross-entropy over
 *   the classes (multi-label) or -log p(true class) (single-label), probabilities clamped to
 *   [1e-7, 1 - 1e-7], so a saturated prediction costs at most 16.1.  metrics_nll: its mean
 *   over the photos (the negative log-likelihood the report and `eval` print).
 * - metrics_brier: the mean over photos and classes of (p - y)^2, y the 0/1 truth of the class
 *   (for single-label data, the multi-class Brier score divided by the number of classes).
 *
 * Calibration (does a probability of 0.8 come true 8 times in 10?)
 * - Probabilities fall into B equal-width bins of [0, 1] (METRICS_ECE_BINS = 15 by default, at
 *   most METRICS_MAX_BINS): p goes to bin min(floor(p * B), B - 1).  Each bin holds its count,
 *   its confidence (the mean of its probabilities) and its accuracy (the fraction of its
 *   outcomes that were true).  The expected calibration error (Naeini et al. 2015, Guo et al.
 *   2017) is ECE = sum over bins of count_b / n * |accuracy_b - confidence_b|, in [0, 1].
 * - metrics_tag_calibration: every (photo, class) probability of [lo, hi) against whether that
 *   class is true: the view of multi-label tags, each judged on its own.
 * - metrics_top1_calibration: per photo, the highest probability in [lo, hi) against whether its
 *   class is the photo's true class there: the view of a softmax classifier, or of one label
 *   group (Style's brand, product) of a multi-label model.  Photos without a true class in
 *   [lo, hi) are left out.
 * - Or by hand: metrics_calibration_init, _add per outcome, _finish.
 */
#ifndef STYLENET_CLASSIFIER_METRICS_H
#define STYLENET_CLASSIFIER_METRICS_H
#include <stdbool.h>
#include <stdint.h>

double metrics_accuracy(int n, int c, const float *scores, const int *target);
double metrics_fbeta_samples(int n, int c, const float *probs, const float *target, float thresh, float beta);
float metrics_best_threshold(int n, int c, const float *probs, const float *target, float beta, double *best_f);
int metrics_group_argmax(const float *row, int lo, int hi);      /* index in [lo, hi) of the maximum */
/* index in [lo, hi) of the first true tag of a multi-hot row; -1 when there is none */
int metrics_group_truth(const float *target_row, int lo, int hi);
double metrics_group_accuracy(int n, int c, const float *scores, const float *target, int lo, int hi);
/* fraction of images whose every group [bounds[g], bounds[g+1]) is right */
double metrics_groups_all_right(int n, int c, const float *scores, const float *target, const int *bounds,
                                int n_groups);
/* counts pred/truth pairs in [0, k) (others are left out) into cm[k*k] */
void metrics_confusion(int n, int k, const int *pred, const int *truth, int *cm);
void metrics_precision_recall(int k, const int *cm, double *precision, double *recall);
double metrics_image_loss(int n_classes, const float *probs, const uint8_t *hot, bool multi);
/* the mean of metrics_image_loss over n photos given as rows probs[i][C], hot[i][C]; NaN for none */
double metrics_nll(int n, int C, const float *const *probs, const uint8_t *const *hot, bool multi);
double metrics_brier(int n, int C, const float *const *probs, const uint8_t *const *hot);

enum { METRICS_ECE_BINS = 15, METRICS_MAX_BINS = 100 };

typedef struct {
    int bins;                        /* B */
    long n;                          /* outcomes counted */
    long count[METRICS_MAX_BINS];
    double conf[METRICS_MAX_BINS];   /* mean probability of the bin; NaN when empty (after _finish) */
    double acc[METRICS_MAX_BINS];    /* fraction true; NaN when empty (after _finish) */
    double ece;                      /* NaN when n == 0 (after _finish) */
} metrics_calibration;

/* bins outside 1..METRICS_MAX_BINS become METRICS_ECE_BINS */
void metrics_calibration_init(metrics_calibration *c, int bins);
void metrics_calibration_add(metrics_calibration *c, double p, bool truth);
void metrics_calibration_finish(metrics_calibration *c);
void metrics_tag_calibration(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi, int bins,
                             metrics_calibration *c);
void metrics_top1_calibration(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi, int bins,
                              metrics_calibration *c);

/* the figures of one label group (or of every class at a threshold), from n images given as row
 * pointers: probs[i][C] and hot[i][C] (0/1) */
typedef struct {
    int lo, hi, k;       /* classes [lo, hi), k = hi - lo */
    int *cm;             /* k x k counts, rows the true class, columns the predicted; NULL at a threshold */
    int *count;          /* images of each true class */
    double *precision;   /* per class; NaN when undefined */
    double *recall;
    int n;               /* images counted */
    double accuracy;     /* right / n; NaN when n == 0 or at a threshold */
} metrics_group;

/* the confusion matrix of group [lo, hi) and its figures; -1 when out of memory */
int metrics_group_score(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi,
                        metrics_group *g);
/* multi-label without groups: each of the C classes judged on its own, predicted when its
 * probability is > thresh (count, precision and recall; no matrix, no accuracy) */
int metrics_threshold_score(int n, int C, const float *const *probs, const uint8_t *const *hot, double thresh,
                            metrics_group *g);
void metrics_group_free(metrics_group *g);

/* classes lo..hi-1 by probability, highest first (ties: lower index first): order[0..hi-lo) */
typedef struct ranked_class {
    int idx;
    float p;
} ranked_class;
void metrics_rank_classes(const float *p, int lo, int hi, ranked_class *order);
#endif
