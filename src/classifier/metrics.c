/* metrics.c - accuracy, F-beta, grouped accuracies, confusion matrices (see metrics.h). */
#include "classifier/metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

int metrics_group_argmax(const float *row, int lo, int hi) {
    int b = lo;
    for (int j = lo + 1; j < hi; j++)
        if (row[j] > row[b]) b = j;
    return b;
}

int metrics_group_truth(const float *target_row, int lo, int hi) {
    for (int j = lo; j < hi; j++)
        if (target_row[j] > 0.5f) return j;
    return -1;
}

double metrics_accuracy(int n, int c, const float *scores, const int *target) {
    if (n <= 0) return NAN;
    int right = 0;
    for (int i = 0; i < n; i++) right += metrics_group_argmax(scores + (long)i * c, 0, c) == target[i];
    return (double)right / n;
}

double metrics_fbeta_samples(int n, int c, const float *probs, const float *target, float thresh, float beta) {
    if (n <= 0) return NAN;
    const double b2 = (double)beta * beta, eps = 1e-9;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double tp = 0, pp = 0, ap = 0;
        for (int j = 0; j < c; j++) {
            int pred = probs[(long)i * c + j] > thresh, truth = target[(long)i * c + j] > 0.5f;
            tp += pred && truth;
            pp += pred;
            ap += truth;
        }
        double prec = tp / (pp + eps), rec = tp / (ap + eps);
        sum += (prec * rec) / (prec * b2 + rec + eps) * (1 + b2);
    }
    return sum / n;
}

float metrics_best_threshold(int n, int c, const float *probs, const float *target, float beta, double *best_f) {
    float best_t = 0.5f;
    double best = -1;
    for (int k = 1; k < 100; k++) {
        float t = k / 100.0f;
        double f = metrics_fbeta_samples(n, c, probs, target, t, beta);
        if (f > best) {
            best = f;
            best_t = t;
        }
    }
    if (best_f) *best_f = best;
    return best_t;
}

double metrics_group_accuracy(int n, int c, const float *scores, const float *target, int lo, int hi) {
    int right = 0, counted = 0;
    for (int i = 0; i < n; i++) {
        int t = metrics_group_truth(target + (long)i * c, lo, hi);
        if (t < 0) continue;
        counted++;
        right += metrics_group_argmax(scores + (long)i * c, lo, hi) == t;
    }
    return counted ? (double)right / counted : NAN;
}

double metrics_groups_all_right(int n, int c, const float *scores, const float *target, const int *bounds,
                                int n_groups) {
    int right = 0, counted = 0;
    for (int i = 0; i < n; i++) {
        const float *s = scores + (long)i * c, *t = target + (long)i * c;
        int ok = 1, whole = 1;
        for (int g = 0; g < n_groups && whole; g++) {
            int truth = metrics_group_truth(t, bounds[g], bounds[g + 1]);
            whole = truth >= 0;
            ok = ok && metrics_group_argmax(s, bounds[g], bounds[g + 1]) == truth;
        }
        if (!whole) continue;
        counted++;
        right += ok;
    }
    return counted ? (double)right / counted : NAN;
}

void metrics_confusion(int n, int k, const int *pred, const int *truth, int *cm) {
    memset(cm, 0, sizeof(int) * (size_t)k * k);
    for (int i = 0; i < n; i++)
        if (pred[i] >= 0 && pred[i] < k && truth[i] >= 0 && truth[i] < k) cm[truth[i] * k + pred[i]]++;
}

void metrics_precision_recall(int k, const int *cm, double *precision, double *recall) {
    for (int j = 0; j < k; j++) {
        long tp = cm[j * k + j], col = 0, row = 0;
        for (int i = 0; i < k; i++) {
            col += cm[i * k + j];
            row += cm[j * k + i];
        }
        precision[j] = col ? (double)tp / col : NAN;
        recall[j] = row ? (double)tp / row : NAN;
    }
}

double metrics_image_loss(int n_classes, const float *probs, const uint8_t *hot, bool multi) {
    const double lo = 1e-7, hi = 1 - 1e-7;
    double loss = 0;
    if (multi) {
        for (int c = 0; c < n_classes; c++) {
            double p = probs[c] < lo ? lo : probs[c] > hi ? hi : probs[c];
            loss -= hot[c] ? log(p) : log(1 - p);
        }
        return n_classes > 0 ? loss / n_classes : 0;
    }
    for (int c = 0; c < n_classes; c++)
        if (hot[c]) {
            double p = probs[c] < lo ? lo : probs[c] > hi ? hi : probs[c];
            return -log(p);
        }
    return 0;
}

double metrics_nll(int n, int C, const float *const *probs, const uint8_t *const *hot, bool multi) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += metrics_image_loss(C, probs[i], hot[i], multi);
    return n > 0 ? sum / n : NAN;
}

double metrics_brier(int n, int C, const float *const *probs, const uint8_t *const *hot) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            double d = probs[i][c] - (hot[i][c] ? 1.0 : 0.0);
            sum += d * d;
        }
    return n > 0 && C > 0 ? sum / ((double)n * C) : NAN;
}

void metrics_calibration_init(metrics_calibration *c, int bins) {
    memset(c, 0, sizeof *c);
    c->bins = bins >= 1 && bins <= METRICS_MAX_BINS ? bins : METRICS_ECE_BINS;
}

void metrics_calibration_add(metrics_calibration *c, double p, bool truth) {
    if (!(p >= 0)) p = 0; /* NaN too */
    if (p > 1) p = 1;
    int b = (int)(p * c->bins);
    if (b >= c->bins) b = c->bins - 1;
    c->count[b]++;
    c->conf[b] += p;
    c->acc[b] += truth;
    c->n++;
}

void metrics_calibration_finish(metrics_calibration *c) {
    double ece = 0;
    for (int b = 0; b < c->bins; b++) {
        if (!c->count[b]) {
            c->conf[b] = c->acc[b] = NAN;
            continue;
        }
        c->conf[b] /= (double)c->count[b];
        c->acc[b] /= (double)c->count[b];
        ece += (double)c->count[b] / (double)c->n * fabs(c->acc[b] - c->conf[b]);
    }
    c->ece = c->n ? ece : NAN;
}

void metrics_tag_calibration(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi, int bins,
                             metrics_calibration *c) {
    metrics_calibration_init(c, bins);
    for (int i = 0; i < n; i++)
        for (int k = lo; k < hi; k++) metrics_calibration_add(c, probs[i][k], hot[i][k] != 0);
    metrics_calibration_finish(c);
}

void metrics_top1_calibration(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi, int bins,
                              metrics_calibration *c) {
    metrics_calibration_init(c, bins);
    for (int i = 0; i < n; i++) {
        bool any = false;
        for (int k = lo; k < hi && !any; k++) any = hot[i][k] != 0;
        if (!any) continue;
        int b = metrics_group_argmax(probs[i], lo, hi);
        metrics_calibration_add(c, probs[i][b], hot[i][b] != 0);
    }
    metrics_calibration_finish(c);
}

void metrics_group_free(metrics_group *g) {
    free(g->cm);
    free(g->count);
    free(g->precision);
    free(g->recall);
    memset(g, 0, sizeof *g);
}

/* the arrays of a group of k classes (cm only with_cm) */
static int group_alloc(metrics_group *g, int lo, int hi, bool with_cm) {
    memset(g, 0, sizeof *g);
    g->lo = lo;
    g->hi = hi;
    g->k = hi - lo;
    const size_t k = (size_t)(g->k > 0 ? g->k : 1);
    g->cm = with_cm ? calloc(k * k, sizeof(int)) : NULL;
    g->count = calloc(k, sizeof(int));
    g->precision = malloc(sizeof(double) * k);
    g->recall = malloc(sizeof(double) * k);
    if ((with_cm && !g->cm) || !g->count || !g->precision || !g->recall) {
        metrics_group_free(g);
        return sn_error("out of memory scoring %d classes", (int)k);
    }
    return 0;
}

int metrics_group_score(int n, const float *const *probs, const uint8_t *const *hot, int lo, int hi,
                        metrics_group *g) {
    if (group_alloc(g, lo, hi, true) < 0) return -1;
    const int k = g->k;
    int right = 0;
    for (int i = 0; i < n; i++) {
        int t = -1;
        for (int j = lo; j < hi && t < 0; j++)
            if (hot[i][j]) t = j - lo;
        if (t < 0) continue; /* no true class in this group */
        int p = metrics_group_argmax(probs[i], lo, hi) - lo;
        g->cm[t * k + p]++;
        g->n++;
        right += t == p;
    }
    g->accuracy = g->n ? (double)right / g->n : NAN;
    metrics_precision_recall(k, g->cm, g->precision, g->recall);
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) g->count[a] += g->cm[a * k + b];
    return 0;
}

int metrics_threshold_score(int n, int C, const float *const *probs, const uint8_t *const *hot, double thresh,
                            metrics_group *g) {
    if (group_alloc(g, 0, C, false) < 0) return -1;
    g->n = n;
    g->accuracy = NAN;
    for (int a = 0; a < C; a++) {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < n; i++) {
            bool pred = probs[i][a] > thresh, truth = hot[i][a];
            tp += pred && truth;
            fp += pred && !truth;
            fn += !pred && truth;
        }
        g->count[a] = tp + fn;
        g->precision[a] = tp + fp ? (double)tp / (tp + fp) : NAN;
        g->recall[a] = tp + fn ? (double)tp / (tp + fn) : NAN;
    }
    return 0;
}

static int by_prob(const void *a, const void *b) {
    const ranked_class *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->idx - y->idx;
}

void metrics_rank_classes(const float *p, int lo, int hi, ranked_class *order) {
    for (int i = lo; i < hi; i++) order[i - lo] = (ranked_class){i, p[i]};
    qsort(order, (size_t)(hi - lo), sizeof *order, by_prob);
}
