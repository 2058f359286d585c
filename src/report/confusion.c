/* confusion.c - the report's figures from the validation predictions: confusion matrices,
 * precision and recall per class, the top losses (report.h). */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "io/image.h"
#include "report/report_parts.h"

/* ---------------------------------------------------------------- evaluations from the predictions */

void report_free_groups(report_ctx *c) {
    for (int g = 0; g < c->n_groups; g++) metrics_group_free(&c->groups[g].m);
}

/* each label group's confusion matrix (or, multi-label without groups, each class at the
 * threshold) from the validation predictions, in classifier/metrics.h's conventions */
int report_evaluate(report_ctx *c) {
    const run_log *r = c->r;
    const int C = r->n_classes, N = r->n_preds;
    const float **probs = malloc(sizeof(float *) * (size_t)(N > 0 ? N : 1));
    const uint8_t **hot = malloc(sizeof(uint8_t *) * (size_t)(N > 0 ? N : 1));
    if (!probs || !hot) {
        free(probs);
        free(hot);
        return sn_error("out of memory");
    }
    for (int i = 0; i < N; i++) {
        probs[i] = r->preds[i].probs;
        hot[i] = r->preds[i].hot;
    }
    const char *task = r->run ? report_jstr(r->run, "task") : NULL; /* single-label: name it by the task */
    int ng = r->n_groups > 0 ? r->n_groups : 1, rc = 0;
    for (int g = 0; g < ng && rc == 0; g++) {
        report_group *e = &c->groups[g];
        e->confusion = r->n_groups > 0 || !r->multi;
        snprintf(e->name, sizeof e->name, "%s",
                 r->n_groups ? r->group_names[g] : !r->multi && task && *task ? task : "class");
        if (e->confusion)
            rc = metrics_group_score(N, probs, hot, r->n_groups ? r->group_lo[g] : 0, r->n_groups ? r->group_hi[g] : C,
                                     &e->m);
        else
            rc = metrics_threshold_score(N, C, probs, hot, r->threshold, &e->m);
        if (rc == 0) c->n_groups = g + 1;
    }
    free(probs);
    free(hot);
    return rc;
}

static void safe_name(const char *s, char *out, size_t cap) {
    size_t j = 0;
    for (; *s && j + 1 < cap; s++) {
        char ch = *s;
        out[j++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ? ch : '_';
    }
    out[j] = 0;
}

int report_confusion_plots(report_ctx *c) {
    const run_log *r = c->r;
    cJSON *conf = cJSON_AddObjectToObject(c->res, "confusion");
    for (int g = 0; g < c->n_groups; g++) {
        report_group *e = &c->groups[g];
        if (!e->confusion) {
            report_missing(c, "confusion matrices: a multi-label task without label groups has none (precision/recall "
                       "per class at the threshold instead)");
            return 0;
        }
        const int k = e->m.k;
        if (k <= 0) continue;
        cJSON *je = cJSON_AddObjectToObject(conf, e->name), *jc = cJSON_AddArrayToObject(je, "classes"),
              *jm = cJSON_AddArrayToObject(je, "matrix");
        for (int a = 0; a < k; a++) {
            cJSON_AddItemToArray(jc, cJSON_CreateString(r->classes[e->m.lo + a]));
            cJSON_AddItemToArray(jm, cJSON_CreateIntArray(e->m.cm + a * k, k));
        }
        if (k > 100) { /* the counts are in the JSON; a picture of them would not be readable */
            char m[200];
            snprintf(m, sizeof m, "confusion matrix of %s: %d classes are too many to draw (the counts are in --json)",
                     e->name, k);
            report_missing(c, m);
            continue;
        }
        char **rl = calloc((size_t)k, sizeof(char *));
        double *shade = malloc(sizeof(double) * (size_t)k * k);
        if (!rl || !shade) {
            free(rl);
            free(shade);
            return sn_error("out of memory");
        }
        size_t longest = 0;
        for (int a = 0; a < k; a++) {
            const char *nm = r->classes[e->m.lo + a];
            char buf[160];
            snprintf(buf, sizeof buf, "%s (%d)", nm, e->m.count[a]);
            rl[a] = strdup(buf);
            if (strlen(buf) > longest) longest = strlen(buf);
            for (int b = 0; b < k; b++) shade[a * k + b] = e->m.count[a] ? (double)e->m.cm[a * k + b] / e->m.count[a] : 0;
        }
        double cell = fmin(64, fmax(22, 640.0 / k));
        double lab = fmin(260, longest * 7.5 + 10);
        int W = (int)(40 + lab + k * cell + 40), H = (int)(70 + k * cell + lab * 0.72 + 60);
        if (W < 560) W = 560;
        char title[160], sub[200];
        snprintf(title, sizeof title, "Confusion matrix: %s", e->name);
        snprintf(sub, sizeof sub, "%d validation images, accuracy %.3f; shade: share of the true class's images", e->m.n,
                 e->m.accuracy);
        const char **cl = (const char **)r->classes + e->m.lo;
        plot_heatmap hm = {.title = title, .subtitle = sub, .xlabel = "predicted", .ylabel = "true (images)",
                           .rows = k, .cols = k, .shade = shade, .counts = e->m.cm, .row_labels = (const char *const *)rl,
                           .col_labels = cl};
        plot_canvas *cv = plot_canvas_new(W, H);
        int rc = -1;
        if (cv) {
            plot_draw_heatmap(cv, (plot_rect){0, 0, W, H}, &hm);
            char file[128], sn[64];
            safe_name(e->name, sn, sizeof sn);
            if (r->n_groups) snprintf(file, sizeof file, "confusion_%s.png", sn);
            else snprintf(file, sizeof file, "confusion.png");
            char note[200];
            snprintf(note, sizeof note, "Rows: the true %s (with its number of validation images); columns: the "
                                        "model's prediction (its highest-scoring %s).", e->name, e->name);
            rc = report_save_fig(c, cv, file, title, note);
        }
        for (int a = 0; a < k; a++) free(rl[a]);
        free(rl);
        free(shade);
        if (rc < 0) return -1;
    }
    return 0;
}

int report_pr_plot(report_ctx *c) {
    const run_log *r = c->r;
    const int W = 900;
    int H = 0;
    for (int g = 0; g < c->n_groups; g++) H += 110 + c->groups[g].m.k * 34;
    if (H > 12000) { /* numbers in the page's table only */
        report_missing(c, "precision_recall.png: too many classes to draw (the page's table has the numbers)");
        return 0;
    }
    plot_canvas *cv = plot_canvas_new(W, H);
    if (!cv) return -1;
    double y = 0;
    const double cols[2][3] = {{report_palette[0][0], report_palette[0][1], report_palette[0][2]}, {report_palette[1][0], report_palette[1][1], report_palette[1][2]}};
    for (int g = 0; g < c->n_groups; g++) {
        report_group *e = &c->groups[g];
        char **lab = calloc((size_t)e->m.k, sizeof(char *));
        if (!lab) {
            plot_canvas_free(cv);
            return sn_error("out of memory");
        }
        for (int a = 0; a < e->m.k; a++) {
            char buf[160];
            snprintf(buf, sizeof buf, "%s (%d)", r->classes[e->m.lo + a], e->m.count[a]);
            lab[a] = strdup(buf);
        }
        const double *vals[2] = {e->m.precision, e->m.recall};
        const char *sl[2] = {"precision", "recall"};
        char title[160];
        if (e->confusion)
            snprintf(title, sizeof title, "%s: precision and recall per class (true images in brackets)", e->name);
        else
            snprintf(title, sizeof title, "precision and recall per class at threshold %.2f (true images in brackets)",
                     r->threshold);
        plot_bars b = {.title = title, .xlabel = g == c->n_groups - 1 ? "score (0..1)" : NULL, .n = e->m.k,
                       .labels = (const char *const *)lab, .n_series = 2, .values = vals, .series_labels = sl,
                       .colours = cols, .lo = 0, .hi = 1, .label_width = 200};
        double h = 110 + e->m.k * 34;
        plot_draw_bars(cv, (plot_rect){0, y, W, h}, &b);
        y += h;
        for (int a = 0; a < e->m.k; a++) free(lab[a]);
        free(lab);
    }
    return report_save_fig(c, cv, "precision_recall.png", "Precision and recall per class",
                    "Precision: of the images predicted as the class, the share that are; recall: of the images of "
                    "the class, the share found. n/a: no image predicted as (or of) that class.");
}

/* ---------------------------------------------------------------- top losses */

/* qsort_r order of prediction indices: highest loss first, then by index */
static int by_loss(const void *a, const void *b, void *run) {
    const run_log *r = run;
    const run_pred *p = &r->preds[*(const int *)a], *q = &r->preds[*(const int *)b];
    if (p->loss != q->loss) return p->loss < q->loss ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

/* "truth" and "pred" texts of a prediction, and the caption lines with their colours */
static int caption(const report_ctx *c, const run_pred *p, int rank, char lines[][200], double cols[][3], char *truth,
                   char *pred, size_t cap) {
    const run_log *r = c->r;
    const double black[3] = {0, 0, 0}, grey[3] = {0.35, 0.35, 0.35}, red[3] = {0.8, 0.1, 0.1}, green[3] = {0.1, 0.5, 0.15};
    int n = 0;
    snprintf(lines[n], 200, "#%d  loss %.3f  %s", rank, p->loss, p->rel);
    memcpy(cols[n++], grey, sizeof grey);
    truth[0] = pred[0] = 0;
    if (r->n_groups > 0 || !r->multi) {
        int ng = r->n_groups > 0 ? r->n_groups : 1;
        for (int g = 0; g < ng; g++) {
            int lo = r->n_groups ? r->group_lo[g] : 0, hi = r->n_groups ? r->group_hi[g] : r->n_classes;
            int t = -1;
            for (int j = lo; j < hi && t < 0; j++)
                if (p->hot[j]) t = j;
            int pr = metrics_group_argmax(p->probs, lo, hi);
            const char *tn = t >= 0 ? r->classes[t] : "(none)";
            size_t tl = strlen(truth), pl = strlen(pred);
            snprintf(truth + tl, cap - tl, "%s%s", g ? " + " : "", tn);
            snprintf(pred + pl, cap - pl, "%s%s", g ? " + " : "", r->classes[pr]);
            if (r->n_groups) {
                if (t == pr) snprintf(lines[n], 200, "%s: %s (%.2f)", r->group_names[g], tn, p->probs[pr]);
                else snprintf(lines[n], 200, "%s: %s \xe2\x86\x92 %s (%.2f)", r->group_names[g], tn, r->classes[pr], p->probs[pr]);
                memcpy(cols[n++], t == pr ? green : red, sizeof red);
            } else {
                snprintf(lines[n], 200, "true: %s (%.2f)", tn, t >= 0 ? p->probs[t] : 0.0);
                memcpy(cols[n++], black, sizeof black);
                snprintf(lines[n], 200, "predicted: %s (%.2f)", r->classes[pr], p->probs[pr]);
                memcpy(cols[n++], t == pr ? green : red, sizeof red);
            }
        }
    } else { /* multi-label without groups: the tags above the threshold */
        bool same = true;
        for (int j = 0; j < r->n_classes; j++) {
            bool on = p->probs[j] > r->threshold;
            same &= on == (p->hot[j] != 0);
            size_t tl = strlen(truth), pl = strlen(pred);
            if (p->hot[j]) snprintf(truth + tl, cap - tl, "%s%s", tl ? " + " : "", r->classes[j]);
            if (on) snprintf(pred + pl, cap - pl, "%s%s", pl ? " + " : "", r->classes[j]);
        }
        snprintf(lines[n], 200, "true: %s", *truth ? truth : "(none)");
        memcpy(cols[n++], black, sizeof black);
        snprintf(lines[n], 200, "predicted: %s", *pred ? pred : "(none)");
        memcpy(cols[n++], same ? green : red, sizeof red);
    }
    return n;
}

int report_top_losses(report_ctx *c) {
    const run_log *r = c->r;
    cJSON *jt = cJSON_AddArrayToObject(c->res, "top_losses");
    int N = c->o->top_losses < r->n_preds ? c->o->top_losses : r->n_preds;
    if (N <= 0) return 0;
    int *idx = malloc(sizeof(int) * (size_t)r->n_preds);
    if (!idx) return sn_error("out of memory");
    for (int i = 0; i < r->n_preds; i++) idx[i] = i;
    qsort_r(idx, (size_t)r->n_preds, sizeof(int), by_loss, (void *)r);
    c->top = idx;
    c->n_top = N;
    const int cols_n = N < 4 ? N : 4, rows_n = (N + cols_n - 1) / cols_n;
    const int n_cap = 1 + (r->n_groups > 0 ? r->n_groups : 2);
    const double TW = 270, TH = 176 + n_cap * 15 + 18;
    const int W = (int)(cols_n * TW + 20), H = (int)(48 + rows_n * TH + 8);
    plot_canvas *cv = plot_canvas_new(W, H);
    if (!cv) return -1;
    char title[128];
    snprintf(title, sizeof title, "Top %d losses on the validation images", N);
    plot_draw_text(cv, W / 2.0, 12, title, 16, true, 0.5, 0, NULL);
    int n_missing = 0;
    for (int t = 0; t < N; t++) {
        const run_pred *p = &r->preds[idx[t]];
        char lines[12][200], truth[512], pred[512];
        double lc[12][3];
        int nl = caption(c, p, t + 1, lines, lc, truth, pred, sizeof truth);
        const char *lp[12];
        for (int i = 0; i < nl; i++) lp[i] = lines[i];
        image im = {0};
        bool ok = image_load(p->path, &im) == 0;
        if (!ok) {
            char w[1200];
            snprintf(w, sizeof w, "top losses: %s (its tile says \"image missing\")", sn_last_error());
            cJSON_AddItemToArray(c->warnings, cJSON_CreateString(w));
            n_missing++;
        }
        double x = 10 + (t % cols_n) * TW, y = 48 + (t / cols_n) * TH;
        plot_draw_image(cv, (plot_rect){x + 6, y, TW - 12, TH - 14}, ok ? &im : NULL, nl, lp, (const double(*)[3])lc);
        image_free(&im);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "rank", t + 1);
        cJSON_AddStringToObject(e, "path", p->path);
        cJSON_AddStringToObject(e, "rel", p->rel);
        cJSON_AddNumberToObject(e, "loss", p->loss);
        cJSON_AddStringToObject(e, "truth", truth);
        cJSON_AddStringToObject(e, "pred", pred);
        cJSON_AddItemToArray(jt, e);
    }
    char note[300];
    snprintf(note, sizeof note,
             "The validation images the model got most wrong: highest loss first, with the true label, the "
             "prediction (its probability) in green when right and red when wrong.%s",
             n_missing ? " Some images could not be read (see the warnings)." : "");
    return report_save_fig(c, cv, "top_losses.png", "Top losses", note);
}
