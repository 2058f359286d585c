/* batchnorm.h - batch normalisation over the channel axis of x[m, c] (m = N*H*W, NHWC).
 *
 * Train: normalise with the batch mean and biased variance, save mean and 1/sqrt(var+eps) for
 * backward, and update the running statistics as PyTorch does:
 *   running = (1-momentum)*running + momentum*batch, with the UNBIASED variance (m/(m-1)).
 * Eval (also "frozen" BN during fine-tuning): normalise with the running statistics.
 * Backward passes ACCUMULATE into dx, dgamma, dbeta; any of them may be NULL.
 * Statistics are accumulated in double, so results do not depend on the thread count.
 */
#ifndef STYLENET_BATCHNORM_H
#define STYLENET_BATCHNORM_H

void batchnorm_forward_train(int m, int c, const float *x, const float *gamma, const float *beta,
                             float eps, float momentum, float *run_mean, float *run_var,
                             float *save_mean, float *save_invstd, float *y);
void batchnorm_forward_eval(int m, int c, const float *x, const float *gamma, const float *beta,
                            const float *run_mean, const float *run_var, float eps, float *y);
void batchnorm_backward_train(int m, int c, const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd,
                              float *dx, float *dgamma, float *dbeta);
void batchnorm_backward_eval(int m, int c, const float *x, const float *dy, const float *gamma,
                             const float *run_mean, const float *run_var, float eps,
                             float *dx, float *dgamma, float *dbeta);
#endif
