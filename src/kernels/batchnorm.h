/* batchnorm.h - batch normalisation over the channel axis of x[m, c] (m = N*H*W, NHWC).
 *
 * Train: normalise with the batch mean and biased variance, save mean and 1/sqrt(var+eps) for
 * backward, and update the running statistics as PyTorch does:
 *   running = (1-momentum)*running + momentum*batch, with the UNBIASED variance (m/(m-1)).
 * Eval (also "frozen" BN during fine-tuning): normalise with the running statistics.
 * Backward passes ACCUMULATE into dx, dgamma, dbeta; any of them may be NULL.
 * Statistics are accumulated in double, so results do not depend on the thread count.
 * Synchronised batch norm (data parallelism over processes): with batchnorm_set_sync(reduce),
 * every training-mode statistic (the sums of x and x^2, and the row count) and every sum of the
 * training backward (of dy and dy*(x-mean)) is summed by reduce(buf, n) across the processes
 * before use, so each process normalises its rows with the whole batch's mean and variance and
 * computes their exact gradient; dgamma and dbeta stay this process's part (the processes'
 * parameter gradients are summed afterwards).  Every process must run the same training passes
 * in the same order (reduce is a collective).  Process-wide; NULL turns it off.
 */
#ifndef STYLENET_BATCHNORM_H
#define STYLENET_BATCHNORM_H
#include <stdbool.h>
#include <stddef.h>
#include "kernels/act.h"

void batchnorm_set_sync(void (*reduce)(double *buf, size_t n));
bool batchnorm_sync_on(void);

void batchnorm_forward_train(int m, int c, const float *x, const float *gamma, const float *beta,
                             float eps, float momentum, float *run_mean, float *run_var,
                             float *save_mean, float *save_invstd, float *y);
void batchnorm_forward_eval(int m, int c, const float *x, const float *gamma, const float *beta,
                            const float *run_mean, const float *run_var, float eps, float *y);
/* the pieces of the forward passes, for fused execution (nn/net.c):
 * train statistics (as batchnorm_forward_train, without writing y) giving the per-channel
 * scale = gamma*invstd and shift = beta - mean*scale; the same from running statistics; and
 * y = act(x*scale + shift [+ z]) (z, the residual, may be NULL; with z only ACT_NONE or ACT_RELU).  The forward functions above are stats + apply, bitwise. */
void batchnorm_train_stats(int m, int c, const float *x, const float *gamma, const float *beta, float eps,
                           float momentum, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                           float *scale, float *shift);
/* the training statistics in two steps, for a caller that sums x part by part (while each part
 * is in cache): batchnorm_sums OVERWRITES s[0..c) with the column sums of x[m, c] and s[c..2c)
 * with those of x^2 (double; -1 if out of memory); batchnorm_train_stats_from_sums turns the sums
 * over `rows` rows into what batchnorm_train_stats gives (no synchronised batch norm: the caller
 * sums across processes, or uses batchnorm_train_stats) */
int batchnorm_sums(int m, int c, const float *x, double *s);
void batchnorm_train_stats_from_sums(double rows, int c, const double *s, const float *gamma, const float *beta,
                                     float eps, float momentum, float *run_mean, float *run_var, float *save_mean,
                                     float *save_invstd, float *scale, float *shift);
void batchnorm_eval_scale_shift(int c, const float *gamma, const float *beta, const float *run_mean,
                                const float *run_var, float eps, float *scale, float *shift);
void batchnorm_apply(int m, int c, const float *x, const float *scale, const float *shift, const float *z, sn_act act,
                     float *y);
/* fused backward of y = act(x*scale + shift) IN PLACE: g holds
 * d loss / d y on entry and d loss / d x on return (overwritten, not accumulated); dgamma and
 * dbeta accumulate (may be NULL).  train: mean/var_or_invstd are the saved batch mean and
 * 1/sqrt(var+eps); else the running mean and variance (eval, frozen) with eps. */
void batchnorm_act_backward(int train, int m, int c, const float *x, const float *scale, const float *shift, sn_act act,
                            const float *gamma, const float *mean, const float *var_or_invstd, float eps, float *g,
                            float *dgamma, float *dbeta);
void batchnorm_backward_train(int m, int c, const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd,
                              float *dx, float *dgamma, float *dbeta);
void batchnorm_backward_eval(int m, int c, const float *x, const float *dy, const float *gamma,
                             const float *run_mean, const float *run_var, float eps,
                             float *dx, float *dgamma, float *dbeta);
#endif
