/* calibration.c - temperature scaling: applying, scoring and fitting one temperature (see
 * calibration.h). */
#include "classifier/calibration.h"
#include <math.h>
#include <stdlib.h>
#include "classifier/classifier.h"
#include "classifier/metrics.h"
#include "core/error.h"
#include "kernels/loss.h"

static bool plain(double T) { return !(T > 0) || T == 1; }

void calibration_scale(long n, const float *logits, double T, float *out) {
    const double inv = plain(T) ? 1 : 1 / T;
    for (long i = 0; i < n; i++) out[i] = (float)(logits[i] * inv);
}

void calibration_probs(int n, int C, const float *logits, double T, bool multi, float *probs) {
    const float *z = logits;
    if (!plain(T)) {
        calibration_scale((long)n * C, logits, T, probs);
        z = probs;
    }
    if (multi) loss_sigmoid(n * C, z, probs);
    else loss_softmax(n, C, z, probs);
}

/* log(1 + exp(x)) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* one photo's loss at 1/T = inv: mean BCE over its C logits, or -log softmax of its true class */
static double photo_nll(int C, const float *z, const uint8_t *hot, bool multi, double inv) {
    if (multi) {
        double s = 0;
        for (int k = 0; k < C; k++) s += softplus(hot[k] ? -z[k] * inv : z[k] * inv);
        return C > 0 ? s / C : 0;
    }
    int t = -1;
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < C; k++) {
        if (t < 0 && hot[k]) t = k;
        if (z[k] * inv > mx) mx = z[k] * inv;
    }
    if (t < 0) return 0;
    for (int k = 0; k < C; k++) s += exp(z[k] * inv - mx);
    return mx + log(s) - z[t] * inv;
}

double calibration_nll(int n, int C, const float *logits, const uint8_t *const *hot, bool multi, double T) {
    if (n <= 0) return NAN;
    const double inv = plain(T) ? 1 : 1 / T;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += photo_nll(C, logits + (size_t)i * C, hot[i], multi, inv);
    return sum / n;
}

double calibration_fit(int n, int C, const float *logits, const uint8_t *const *hot, bool multi) {
    if (n <= 0) return 1;
    const double g = (sqrt(5.0) - 1) / 2;
    double a = log(CALIBRATION_T_MIN), b = log(CALIBRATION_T_MAX);
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = calibration_nll(n, C, logits, hot, multi, exp(x1));
    double f2 = calibration_nll(n, C, logits, hot, multi, exp(x2));
    while (b - a > 1e-5) { /* an interval of log T: relative precision of T */
        if (f1 <= f2) {
            b = x2, x2 = x1, f2 = f1;
            x1 = b - g * (b - a);
            f1 = calibration_nll(n, C, logits, hot, multi, exp(x1));
        } else {
            a = x1, x1 = x2, f1 = f2;
            x2 = a + g * (b - a);
            f2 = calibration_nll(n, C, logits, hot, multi, exp(x2));
        }
    }
    return exp((a + b) / 2);
}

int calibration_measure(const classifier *c, int n, const float *logits, const uint8_t *const *hot, double T,
                        int bins, calibration_stats *s) {
    const int C = c->n_classes;
    const bool multi = classifier_is_multi(c);
    float *probs = malloc(sizeof(float) * ((size_t)n * C + 1));
    const float **rows = malloc(sizeof(float *) * ((size_t)n + 1));
    if (!probs || !rows) {
        free(probs);
        free(rows);
        return sn_error("out of memory measuring the calibration of %d photos", n);
    }
    calibration_probs(n, C, logits, T, multi, probs);
    for (int i = 0; i < n; i++) rows[i] = probs + (size_t)i * C;
    *s = (calibration_stats){.temperature = plain(T) ? 1 : T};
    s->nll = calibration_nll(n, C, logits, hot, multi, T);
    s->brier = metrics_brier(n, C, rows, hot);
    metrics_calibration cal;
    if (multi) metrics_tag_calibration(n, rows, hot, 0, C, bins, &cal);
    else metrics_top1_calibration(n, rows, hot, 0, C, bins, &cal);
    s->ece = cal.ece;
    s->n_groups = multi ? c->n_groups : 0;
    for (int g = 0; g < s->n_groups && g < 8; g++) {
        metrics_top1_calibration(n, rows, hot, c->group_lo[g], c->group_hi[g], bins, &cal);
        s->group_ece[g] = cal.ece;
    }
    free(probs);
    free(rows);
    return 0;
}
