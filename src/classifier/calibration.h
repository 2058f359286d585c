/* calibration.h - temperature scaling: probabilities that mean what they say.
 *
 * A network trained to a low loss is over-confident on photos it has not seen.  Temperature
 * scaling (Guo et al. 2017) divides its logits by one number T > 0 before the sigmoid
 * (multi-label) or softmax (single-label): T > 1 softens the probabilities, T < 1 sharpens
 * them; the ranking of the classes, so every argmax (accuracy, label groups), is unchanged.  A
 * classifier's T lives in its model file ("temperature"; absent = 1) and classifier_probs
 * applies it, so predict, serve, eval and ensembles all see calibrated probabilities.
 *
 * Contract
 * - calibration_probs(n, C, logits, T, multi, probs): probabilities of logits / T; T <= 0 or
 *   T == 1: the plain sigmoid / softmax.  probs may be logits.
 * - calibration_scale(n, logits, T, out): out = logits / T (a copy when T <= 0 or 1); out may be
 *   logits.
 * - calibration_nll(n, C, logits, hot, multi, T): the mean over the n photos of each photo's
 *   loss at T: the mean binary cross-entropy over its C classes (multi-label) or -log p of its
 *   true class (single-label; the first true class of hot[i]; a photo without one adds 0),
 *   computed from the logits stably (softplus, log-sum-exp) in double and unclamped.
 * - calibration_fit(n, C, logits, hot, multi): the T minimising calibration_nll, found by
 *   golden-section search on log T over [CALIBRATION_T_MIN, CALIBRATION_T_MAX] to a relative
 *   1e-5.  The NLL is convex in 1/T (a sum of log-sum-exps and softpluses of terms linear in
 *   1/T), so unimodal in log T and the search finds its minimum; a result at a bound means the
 *   photos want a more extreme T (e.g. every photo right with a margin: T -> 0).  1 when n == 0.
 * - calibration_measure(c, n, logits, hot, T, bins, &s): what `eval`, `train` and `calibrate`
 *   print: NLL, Brier and ECE (classifier/metrics.h) of the probabilities at T; the ECE is over
 *   every (photo, class) probability for a multi-label classifier and of the top-1 probability
 *   for a single-label one; group_ece[g] is each label group's top-1 ECE (multi-label with
 *   groups).  -1 when out of memory.
 * hot[i] are the photos' 0/1 truths over the C classes (data/dataset.h's ds_hot rows).
 *
 * Layering: classifier/ (uses metrics.h).
 */
#ifndef STYLENET_CALIBRATION_H
#define STYLENET_CALIBRATION_H
#include <stdbool.h>
#include <stdint.h>

#define CALIBRATION_T_MIN 0.05
#define CALIBRATION_T_MAX 20.0

struct classifier;

typedef struct {
    double temperature;
    double nll, brier, ece;
    int n_groups;
    double group_ece[8];
} calibration_stats;

void calibration_probs(int n, int C, const float *logits, double T, bool multi, float *probs);
void calibration_scale(long n, const float *logits, double T, float *out);
double calibration_nll(int n, int C, const float *logits, const uint8_t *const *hot, bool multi, double T);
double calibration_fit(int n, int C, const float *logits, const uint8_t *const *hot, bool multi);
int calibration_measure(const struct classifier *c, int n, const float *logits, const uint8_t *const *hot, double T,
                        int bins, calibration_stats *s);
#endif
