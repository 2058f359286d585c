/* reliability.c - reliability.png: how often the validation predictions' probabilities came true
 * (report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "report/report_parts.h"

/* the probabilities of one prediction as they were before the model's temperature T (p^T
 * renormalised for softmax, sigmoid(T logit p) for tags) into out[C] */
static void uncalibrated(const float *p, int C, bool multi, double T, float *out) {
    const double lo = 1e-7, hi = 1 - 1e-7;
    double sum = 0;
    for (int k = 0; k < C; k++) {
        double q = p[k] < lo ? lo : p[k] > hi ? hi : p[k];
        out[k] = multi ? (float)(1 / (1 + exp(-T * log(q / (1 - q))))) : (float)pow(q, T);
        sum += out[k];
    }
    for (int k = 0; !multi && k < C; k++) out[k] = (float)(out[k] / sum);
}

/* one panel: the diagonal, accuracy against confidence per bin of cal[0] (as saved) and, when
 * have_raw, of cal[1] (before the temperature) */
static void panel(plot_canvas *cv, plot_rect rect, const char *title, const metrics_calibration *cal, bool have_raw,
                  double T) {
    static const double diag[2] = {0, 1};
    double x[2][METRICS_MAX_BINS], y[2][METRICS_MAX_BINS];
    int n[2] = {0, 0};
    for (int s = 0; s < 2; s++)
        for (int b = 0; b < cal[s].bins; b++)
            if (cal[s].count[b] > 0) {
                x[s][n[s]] = cal[s].conf[b];
                y[s][n[s]++] = cal[s].acc[b];
            }
    char l0[96], l1[96], t[200];
    snprintf(l0, sizeof l0, "%s (ECE %.4f)", have_raw ? "calibrated" : "as predicted", cal[0].ece);
    snprintf(l1, sizeof l1, "T = 1 (ECE %.4f)", cal[1].ece);
    if (have_raw) snprintf(t, sizeof t, "%s, temperature %.3g", title, T);
    else snprintf(t, sizeof t, "%s", title);
    plot_series s[3] = {{.label = "perfect", .x = diag, .y = diag, .n = 2, .r = 0.6, .g = 0.6, .b = 0.6, .dashed = true},
                        {.label = l0, .x = x[0], .y = y[0], .n = n[0], .dots = true, .r = report_palette[0][0],
                         .g = report_palette[0][1], .b = report_palette[0][2]},
                        {.label = l1, .x = x[1], .y = y[1], .n = n[1], .dots = true, .dashed = true,
                         .r = report_palette[1][0], .g = report_palette[1][1], .b = report_palette[1][2]}};
    plot_opts o = {.title = t, .xlabel = "confidence (mean probability of the bin)", .ylabel = "fraction true",
                   .fix_x = true, .fix_y = true, .xlo = 0, .xhi = 1, .ylo = 0, .yhi = 1};
    plot_draw_lines(cv, rect, &o, s, have_raw ? 3 : 2);
}

/* the reliability bins of the view v (0: every tag, else top-1 of group v - 1 or of all classes)
 * of rows as saved (cal[0]) and before the temperature (cal[1]) */
static void view_bins(const report_ctx *c, int v, const float *const *rows, const float *const *raw,
                      const uint8_t *const *hot, metrics_calibration cal[2]) {
    const run_log *r = c->r;
    const int n = r->n_preds, g = v - 1;
    const int lo = v > 0 && r->n_groups ? r->group_lo[g] : 0, hi = v > 0 && r->n_groups ? r->group_hi[g] : r->n_classes;
    for (int s = 0; s < 2; s++) {
        if (v == 0) metrics_tag_calibration(n, s ? raw : rows, hot, lo, hi, METRICS_ECE_BINS, &cal[s]);
        else metrics_top1_calibration(n, s ? raw : rows, hot, lo, hi, METRICS_ECE_BINS, &cal[s]);
    }
}

int report_reliability_plot(report_ctx *c) {
    const run_log *r = c->r;
    const int n = r->n_preds, C = r->n_classes;
    const bool have_raw = fabs(r->temperature - 1) > 1e-6;
    /* panels: multi-label: every tag, then each group's top-1; single-label: the top-1 */
    const int n_views = r->multi ? 1 + r->n_groups : 1;
    const float **rows = malloc(sizeof(float *) * ((size_t)n + 1) * 2);
    const uint8_t **hot = malloc(sizeof(uint8_t *) * ((size_t)n + 1));
    float *rawp = malloc(sizeof(float) * ((size_t)n * C + 1));
    if (!rows || !hot || !rawp) {
        free(rows), free(hot), free(rawp);
        return sn_error("out of memory");
    }
    const float **raw = rows + n + 1;
    for (int i = 0; i < n; i++) {
        rows[i] = r->preds[i].probs;
        hot[i] = r->preds[i].hot;
        uncalibrated(r->preds[i].probs, C, r->multi, r->temperature, rawp + (size_t)i * C);
        raw[i] = rawp + (size_t)i * C;
    }
    const int W = 520, H = 480, cols = n_views < 3 ? n_views : 3, nrows = (n_views + cols - 1) / cols;
    plot_canvas *cv = plot_canvas_new(W * cols, H * nrows);
    cJSON *js = cJSON_AddObjectToObject(c->res, "calibration");
    cJSON_AddNumberToObject(js, "temperature", r->temperature);
    for (int v = 0; cv && v < n_views; v++) {
        metrics_calibration cal[2];
        view_bins(c, v, rows, raw, hot, cal);
        char title[128];
        if (v == 0 && r->multi) snprintf(title, sizeof title, "every tag");
        else snprintf(title, sizeof title, "%s: top-1", r->multi ? r->group_names[v - 1] : "top class");
        panel(cv, (plot_rect){(double)(v % cols) * W, (double)(v / cols) * H, W, H}, title, cal, have_raw,
              r->temperature);
        cJSON *e = cJSON_AddObjectToObject(js, v == 0 && r->multi ? "tags" : r->multi ? r->group_names[v - 1] : "top1");
        cJSON_AddNumberToObject(e, "ece", cal[0].ece);
        cJSON_AddNumberToObject(e, "ece_uncalibrated", cal[1].ece);
    }
    free(rows), free(hot), free(rawp);
    if (!cv) return -1;
    return report_save_fig(c, cv, "reliability.png", "Reliability of the probabilities",
                           "Validation photos, probabilities in 15 equal-width bins: each dot is a bin's mean "
                           "probability against the share of its predictions that were true; on the diagonal a "
                           "probability means what it says. ECE: the bins' gaps weighted by their counts. "
                           "Dashed: the same photos before the model's temperature (when it has one).");
}
