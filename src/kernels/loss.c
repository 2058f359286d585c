/* loss.c - softmax cross-entropy and sigmoid BCE on logits, mean-reduced, in double. */
#include "kernels/loss.h"
#include <math.h>

/* rows whose target is outside [0, c) (e.g. PyTorch's ignore_index -100) are ignored: they add
 * nothing to the loss or the count, and get a zero gradient */
float loss_softmax_ce(int n, int c, const float *logits, const int *target, float *dlogits) {
    double total = 0;
    int counted = 0;
    for (int i = 0; i < n; i++)
        if (target[i] >= 0 && target[i] < c) counted++;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (long)i * c;
        int t = target[i];
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c; j++) s += exp((double)z[j] - mx);
        double lse = mx + log(s);
        int ok = t >= 0 && t < c;
        if (ok) total += lse - z[t];
        if (dlogits) {
            float *g = dlogits + (long)i * c;
            for (int j = 0; j < c; j++)
                g[j] = ok ? (float)((exp((double)z[j] - lse) - (j == t)) / counted) : 0.0f;
        }
    }
    return counted ? (float)(total / counted) : 0.0f;
}

float loss_sigmoid_bce(int n, int c, const float *logits, const float *target, float *dlogits) {
    double total = 0, inv = 1.0 / ((double)n * c);
    long nc = (long)n * c;
    for (long i = 0; i < nc; i++) {
        double z = logits[i], t = target[i];
        total += (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
        if (dlogits) {
            double s = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            dlogits[i] = (float)((s - t) * inv);
        }
    }
    return nc ? (float)(total * inv) : 0.0f;
}

float loss_group_softmax_ce(int n, int c, const float *logits, const float *target, int n_groups, const int *bounds,
                            float *dlogits) {
    if (dlogits)
        for (long i = 0; i < (long)n * c; i++) dlogits[i] = 0.0f;
    if (n <= 0 || n_groups <= 0) return 0.0f;
    double total = 0, inv = 1.0 / ((double)n * n_groups);
    for (int g = 0; g < n_groups; g++) {
        const int lo = bounds[g], hi = bounds[g + 1];
        if (lo < 0 || hi > c || hi <= lo) continue;
        for (int i = 0; i < n; i++) {
            const float *z = logits + (long)i * c, *t = target + (long)i * c;
            double mx = -INFINITY, s = 0, tsum = 0;
            for (int j = lo; j < hi; j++) mx = z[j] > mx ? z[j] : mx;
            for (int j = lo; j < hi; j++) s += exp((double)z[j] - mx);
            double lse = mx + log(s);
            for (int j = lo; j < hi; j++) {
                total += (double)t[j] * (lse - z[j]);
                tsum += t[j];
            }
            if (dlogits) {
                float *d = dlogits + (long)i * c;
                for (int j = lo; j < hi; j++) d[j] += (float)((exp((double)z[j] - lse) * tsum - t[j]) * inv);
            }
        }
    }
    return (float)(total * inv);
}

void loss_softmax(int n, int c, const float *logits, float *probs) {
    for (int i = 0; i < n; i++) {
        const float *z = logits + (long)i * c;
        float *p = probs + (long)i * c;
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c; j++) s += exp((double)z[j] - mx);
        for (int j = 0; j < c; j++) p[j] = (float)(exp((double)z[j] - mx) / s);
    }
}

void loss_sigmoid(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) {
        double z = x[i];
        y[i] = (float)(z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)));
    }
}
