/* linear.h - fully connected layer, PyTorch's nn.Linear: y[n,out] = x[n,in] * w[out,in]^T + b.
 * Weights in PyTorch's own layout.  Backward ACCUMULATES; dx, dw, db may each be NULL.
 */
#ifndef STYLENET_LINEAR_H
#define STYLENET_LINEAR_H

void linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
void linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);
#endif
