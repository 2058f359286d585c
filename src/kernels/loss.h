/* loss.h - losses on logits[n, c], mean-reduced as PyTorch's defaults.
 *   softmax cross-entropy (single-label, target = class index per row),
 *   sigmoid binary cross-entropy with logits (multi-label, target[n,c] in {0,1} or soft),
 *     mean over all n*c elements, as nn.BCEWithLogitsLoss.
 * Each returns the loss and, when dlogits is not NULL, WRITES d(loss)/d(logits) there.
 * Computed stably (log-sum-exp; log1p(exp(-|z|))) and accumulated in double.
 * loss_softmax_ce: a row whose target is outside [0, c) (PyTorch's ignore_index -100) is ignored:
 * no loss, zero gradient, and the mean is over the remaining rows (0 if none).
 * loss_group_softmax_ce: multi-label tags made of groups [bounds[g], bounds[g+1]) that each hold
 *   one true tag (Style: 7 brands, then 10 products): for every group the softmax cross-entropy
 *   of its logits against its targets read as class probabilities (soft targets allowed; a row
 *   whose group targets are all 0 adds nothing but still counts in the mean), i.e. PyTorch's
 *   F.cross_entropy(z[:, lo:hi], t[:, lo:hi]) with probability targets, mean over rows; the loss
 *   is the mean over the groups.  Tags outside every group get a zero gradient.
 */
#ifndef STYLENET_LOSS_H
#define STYLENET_LOSS_H

float loss_softmax_ce(int n, int c, const float *logits, const int *target, float *dlogits);
float loss_sigmoid_bce(int n, int c, const float *logits, const float *target, float *dlogits);
float loss_group_softmax_ce(int n, int c, const float *logits, const float *target, int n_groups, const int *bounds,
                            float *dlogits);
void loss_softmax(int n, int c, const float *logits, float *probs);
void loss_sigmoid(int n, const float *x, float *y);
#endif
