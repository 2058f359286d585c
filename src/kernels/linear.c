/* linear.c - nn.Linear on sgemm: y = x W^T + b; backward accumulates (beta = 1). */
#include "kernels/linear.h"
#include "kernels/gemm.h"

void linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
    if (n <= 0 || out <= 0) return;
    gemm_sgemm(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        for (long i = 0; i < n; i++)
            for (int j = 0; j < out; j++) y[i * out + j] += b[j];
}

void linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    if (n <= 0 || out <= 0) return;
    if (dx) gemm_sgemm(false, false, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw) gemm_sgemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db)
        for (int j = 0; j < out; j++) {
            double s = 0;
            for (long i = 0; i < n; i++) s += dy[i * out + j];
            db[j] += (float)s;
        }
}
