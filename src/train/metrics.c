/* metrics.c - accuracy, F-beta, grouped accuracies, confusion (see metrics.h). */
#include "train/metrics.h"
#include <stdlib.h>
#include <string.h>

int group_argmax(const float *row, int lo, int hi) {
    int b = lo;
    for (int j = lo + 1; j < hi; j++)
        if (row[j] > row[b]) b = j;
    return b;
}

double accuracy(int n, int c, const float *scores, const int *target) {
    if (n <= 0) return 0;
    int right = 0;
    for (int i = 0; i < n; i++) right += group_argmax(scores + (long)i * c, 0, c) == target[i];
    return (double)right / n;
}

double fbeta_samples(int n, int c, const float *probs, const float *target, float thresh, float beta) {
    if (n <= 0) return 0;
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

float best_threshold(int n, int c, const float *probs, const float *target, float beta, double *best_f) {
    float best_t = 0.5f;
    double best = -1;
    for (int k = 1; k < 100; k++) {
        float t = k / 100.0f;
        double f = fbeta_samples(n, c, probs, target, t, beta);
        if (f > best) {
            best = f;
            best_t = t;
        }
    }
    if (best_f) *best_f = best;
    return best_t;
}

double group_accuracy(int n, int c, const float *scores, const float *target, int lo, int hi) {
    if (n <= 0) return 0;
    int right = 0;
    for (int i = 0; i < n; i++)
        right += group_argmax(scores + (long)i * c, lo, hi) == group_argmax(target + (long)i * c, lo, hi);
    return (double)right / n;
}

double groups_all_right(int n, int c, const float *scores, const float *target, const int *bounds, int n_groups) {
    if (n <= 0) return 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        int ok = 1;
        for (int g = 0; g < n_groups && ok; g++)
            ok = group_argmax(scores + (long)i * c, bounds[g], bounds[g + 1]) ==
                 group_argmax(target + (long)i * c, bounds[g], bounds[g + 1]);
        right += ok;
    }
    return (double)right / n;
}

void confusion(int n, int k, const int *pred, const int *truth, int *cm) {
    memset(cm, 0, sizeof(int) * (size_t)k * k);
    for (int i = 0; i < n; i++)
        if (pred[i] >= 0 && pred[i] < k && truth[i] >= 0 && truth[i] < k) cm[truth[i] * k + pred[i]]++;
}

void precision_recall(int k, const int *cm, double *precision, double *recall) {
    for (int j = 0; j < k; j++) {
        long tp = cm[j * k + j], col = 0, row = 0;
        for (int i = 0; i < k; i++) {
            col += cm[i * k + j];
            row += cm[j * k + i];
        }
        precision[j] = col ? (double)tp / col : 0;
        recall[j] = row ? (double)tp / row : 0;
    }
}

static int by_prob(const void *a, const void *b) {
    const ranked_class *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->idx - y->idx;
}

void rank_classes(const float *p, int lo, int hi, ranked_class *order) {
    for (int i = lo; i < hi; i++) order[i - lo] = (ranked_class){i, p[i]};
    qsort(order, (size_t)(hi - lo), sizeof *order, by_prob);
}
