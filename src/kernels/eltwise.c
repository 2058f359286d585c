/* eltwise.c - element-wise layers; OpenMP over large arrays, loops vectorise (the `if` applies to
 * the parallel part only: a plain `if` would also turn the simd off for small arrays). */
#include "kernels/eltwise.h"
#include "kernels/act.h"
#include "core/rng.h"

#define PAR_MIN 65536 /* below this, threads cost more than they save */

void eltwise_relu_forward(size_t n, const float *x, float *y) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = act_value(ACT_RELU, x[i]);
}

void eltwise_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += act_passes(ACT_RELU, y[i]) ? dy[i] : 0.0f;
}

void eltwise_relu6_forward(size_t n, const float *x, float *y) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = act_value(ACT_RELU6, x[i]);
}

void eltwise_relu6_backward(size_t n, const float *y, const float *dy, float *dx) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += act_passes(ACT_RELU6, y[i]) ? dy[i] : 0.0f;
}

void eltwise_add_forward(size_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void eltwise_add_act_forward(size_t n, const float *a, const float *b, sn_act act, float *y) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = act_value(act, a[i] + b[i]);
}

void eltwise_axpy(size_t n, float alpha, const float *x, float *y) {
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

/* mask[i] = 1 where element i is kept (rng_uniform >= p); mask may be NULL */
void eltwise_dropout_forward(size_t n, float p, uint64_t seed, uint64_t stream, uint64_t first, const float *x,
                             float *y, uint8_t *mask) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (n > PAR_MIN / 8)
    for (size_t i = 0; i < n; i++) {
        int keep = !(rng_uniform(seed, stream, first + i) < p);
        if (mask) mask[i] = (uint8_t)keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
}

void eltwise_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += mask[i] ? dy[i] * scale : 0.0f;
}

void eltwise_dropout_backward_set(size_t n, float p, const uint8_t *mask, float *g) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (size_t i = 0; i < n; i++) g[i] = mask[i] ? g[i] * scale : 0.0f;
}

/* mask[s] = 1 where sample s is kept (rng_uniform >= p); mask may be NULL.  The drop-path passes
 * run one parallel region over the samples (threads when the whole pass is large). */
void eltwise_droppath_forward(int n, size_t per, float p, uint64_t seed, uint64_t stream, uint64_t first,
                              const float *x, float *y, uint8_t *mask) {
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if ((size_t)n * per > PAR_MIN)
    for (int s = 0; s < n; s++) {
        const int keep = !(rng_uniform(seed, stream, first + (uint64_t)s) < p);
        if (mask) mask[s] = (uint8_t)keep;
        const float *xs = x + (size_t)s * per;
        float *ys = y + (size_t)s * per;
#pragma omp simd
        for (size_t i = 0; i < per; i++) ys[i] = keep ? xs[i] * scale : 0.0f;
    }
}

void eltwise_droppath_backward(int n, size_t per, float p, const uint8_t *mask, const float *dy, float *dx) {
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if ((size_t)n * per > PAR_MIN)
    for (int s = 0; s < n; s++) {
        if (!mask[s]) continue;
        const float *ds = dy + (size_t)s * per;
        float *xs = dx + (size_t)s * per;
#pragma omp simd
        for (size_t i = 0; i < per; i++) xs[i] += ds[i] * scale;
    }
}

void eltwise_droppath_backward_set(int n, size_t per, float p, const uint8_t *mask, float *g) {
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if ((size_t)n * per > PAR_MIN)
    for (int s = 0; s < n; s++) {
        const int keep = mask[s];
        float *gs = g + (size_t)s * per;
#pragma omp simd
        for (size_t i = 0; i < per; i++) gs[i] = keep ? gs[i] * scale : 0.0f;
    }
}
