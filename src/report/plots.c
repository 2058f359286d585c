/* plots.c - the report's plots from the history: loss.png, metrics.png, lr_find.png (report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "report/report_parts.h"

/* phase segments of the epochs: starts[i] = first epoch index of segment i */
static int phase_segments(const run_log *r, int *starts, int cap) {
    int n = 0;
    for (int i = 0; i < r->n_epochs && n < cap; i++)
        if (i == 0 || strcmp(r->epochs[i].phase, r->epochs[i - 1].phase) != 0 || r->epochs[i].size != r->epochs[i - 1].size)
            starts[n++] = i;
    return n;
}

static void segment_label(const run_epoch *e, char *buf, size_t cap) {
    if (e->size > 0) snprintf(buf, cap, "%s %dpx", *e->phase ? e->phase : "phase", e->size);
    else snprintf(buf, cap, "%s", e->phase);
}

/* ---------------------------------------------------------------- loss.png */

/* a palette colour as a series' r, g, b */
#define PAL_RGB(k) .r = report_palette[k][0], .g = report_palette[k][1], .b = report_palette[k][2]

/* the curves of loss.png: per batch (x, loss, smoothed loss, rate of each layer group) and per
 * epoch (x, validation and training loss, peak rate) */
typedef struct {
    int nb, ne;
    bool iter_x;              /* x is the iteration (else the epoch) */
    double *bx, *by, *bs, *lr[3];
    double *ex, *ev, *et, *elr;
    bool differential, known; /* layer groups had different rates; the history says them */
    double xlo, xhi;
} loss_curves;

static void loss_curves_free(loss_curves *d) {
    free(d->bx);
    free(d->ex);
}

static int loss_curves_make(const run_log *r, bool iter_x, loss_curves *d) {
    const int nb = r->n_batches, ne = r->n_epochs;
    *d = (loss_curves){.nb = nb, .ne = ne, .iter_x = iter_x};
    d->bx = calloc((size_t)(nb + 1) * 6, sizeof(double));
    d->ex = calloc((size_t)(ne + 1) * 4, sizeof(double));
    if (!d->bx || !d->ex) {
        loss_curves_free(d);
        return sn_error("out of memory");
    }
    d->by = d->bx + nb + 1, d->bs = d->by + nb + 1;
    for (int g = 0; g < 3; g++) d->lr[g] = d->bs + (g + 1) * (nb + 1);
    d->ev = d->ex + ne + 1, d->et = d->ev + ne + 1, d->elr = d->et + ne + 1;
    for (int i = 0; i < nb; i++) {
        d->bx[i] = r->batches[i].iter;
        d->by[i] = r->batches[i].loss;
    }
    double beta = nb > 0 ? fmin(0.98, fmax(0.5, 1 - 10.0 / nb)) : 0.98;
    report_smooth(d->by, nb, beta, d->bs);
    /* the rate of each layer group: the head's rate (logged per batch) times the group's share
     * of the peak rates of the batch's epoch */
    for (int i = 0; i < ne; i++) d->known |= isfinite(r->epochs[i].lrs[0]);
    int ei = 0;
    for (int i = 0; i < nb; i++) {
        while (ei < ne && isfinite(r->epochs[ei].iter) && r->epochs[ei].iter < d->bx[i]) ei++;
        const run_epoch *e = ei < ne ? &r->epochs[ei] : NULL;
        for (int g = 0; g < 3; g++) {
            double share = e && isfinite(e->lrs[g]) && e->lrs[2] > 0 ? e->lrs[g] / e->lrs[2] : NAN;
            d->lr[g][i] = g == 2 ? r->batches[i].lr : r->batches[i].lr * share;
            if (g < 2 && isfinite(share) && fabs(share - 1) > 1e-6) d->differential = true;
        }
    }
    for (int i = 0; i < ne; i++) {
        d->ex[i] = iter_x ? r->epochs[i].iter : r->epochs[i].epoch;
        d->ev[i] = r->epochs[i].valid_loss;
        d->et[i] = r->epochs[i].train_loss;
        d->elr[i] = r->epochs[i].lr;
    }
    double xlo = INFINITY, xhi = -INFINITY;
    for (int i = 0; i < nb; i++) xlo = fmin(xlo, d->bx[i]), xhi = fmax(xhi, d->bx[i]);
    for (int i = 0; i < ne; i++) xlo = fmin(xlo, d->ex[i]), xhi = fmax(xhi, d->ex[i]);
    if (iter_x) xlo = fmin(xlo, 0), xhi += (xhi - xlo) * 0.02; /* room for the last epoch's dot */
    else xlo -= 0.5, xhi += 0.5;
    d->xlo = xlo;
    d->xhi = xhi;
    return 0;
}

/* the lower panel: the learning rate of each layer group, log scale */
static void lr_panel(plot_canvas *cv, plot_rect at, const loss_curves *d, int ns, double *vx) {
    const int nb = d->nb, ne = d->ne;
    plot_series ls[3];
    int nl = 0;
    const char *glab[3] = {"layer group 0 (early body)", "layer group 1 (late body)", "layer group 2 (head)"};
    if (nb) {
        if (d->differential) {
            for (int g = 0; g < 3; g++)
                ls[nl++] = (plot_series){.label = glab[g], .x = d->bx, .y = d->lr[g], .n = nb, PAL_RGB(2 + g), .width = 1.8};
        } else {
            ls[nl++] = (plot_series){.label = d->known ? "learning rate (every layer group)" : "learning rate (head)",
                                     .x = d->bx, .y = d->lr[2], .n = nb, PAL_RGB(4), .width = 1.8};
        }
    } else if (ne) {
        ls[nl++] = (plot_series){.label = "peak learning rate of the head", .x = d->ex, .y = d->elr, .n = ne,
                                 PAL_RGB(4), .dots = true};
    }
    /* log scale, down to a thousandth of the highest rate (annealing reaches ~0 at the end of a cycle) */
    double lmax = 0, lmin = INFINITY;
    for (int k = 0; k < nl; k++)
        for (int i = 0; i < ls[k].n; i++)
            if (isfinite(ls[k].y[i]) && ls[k].y[i] > 0) lmax = fmax(lmax, ls[k].y[i]), lmin = fmin(lmin, ls[k].y[i]);
    plot_opts lo = {.xlabel = d->iter_x ? "iteration (optimiser steps)" : "epoch", .ylabel = "learning rate (log)",
                    .n_vlines = ns, .vlines = vx, .fix_x = d->xhi > d->xlo, .xlo = d->xlo, .xhi = d->xhi,
                    .logy = true, .fix_y = lmax > 0, .ylo = fmax(lmin, lmax * 1e-3) / 1.3, .yhi = lmax * 1.5,
                    .xstep = d->iter_x ? 0 : ne <= 15 ? 1 : ne <= 30 ? 2 : 0};
    plot_draw_lines(cv, at, &lo, ls, nl);
}

int report_loss_plot(report_ctx *c) {
    const run_log *r = c->r;
    const int nb = r->n_batches, ne = r->n_epochs;
    bool iter_x = true;
    for (int i = 0; i < ne; i++) iter_x &= isfinite(r->epochs[i].iter);
    if (nb == 0 && !iter_x && ne == 0) {
        report_missing(c, "loss.png: no batches and no epochs in the history yet");
        return 0;
    }
    if (nb > 0 && !iter_x) iter_x = ne == 0; /* batches but epochs without positions: batches only */
    loss_curves d;
    if (loss_curves_make(r, iter_x, &d) < 0) return -1;
    /* phase boundaries */
    int starts[64], ns = phase_segments(r, starts, 64);
    double vx[64];
    char vlab[64][48];
    const char *vl[64];
    for (int s = 0; s < ns; s++) {
        int i = starts[s];
        vx[s] = iter_x ? (i == 0 ? (nb ? fmin(0, d.bx[0]) : 0) : r->epochs[i - 1].iter) : r->epochs[i].epoch - 0.5;
        segment_label(&r->epochs[i], vlab[s], sizeof vlab[s]);
        vl[s] = vlab[s];
    }
    const int W = 1000, H1 = 480, H2 = 250;
    plot_canvas *cv = plot_canvas_new(W, H1 + H2);
    if (!cv) {
        loss_curves_free(&d);
        return -1;
    }
    plot_series s[4];
    int n = 0;
    if (nb) {
        s[n++] = (plot_series){.label = "train loss (each batch)", .x = d.bx, .y = d.by, .n = nb, PAL_RGB(0),
                               .alpha = 0.25, .width = 1};
        s[n++] = (plot_series){.label = "train loss (smoothed)", .x = d.bx, .y = d.bs, .n = nb, PAL_RGB(0), .width = 2.2};
    } else if (ne) {
        s[n++] = (plot_series){.label = "train loss (epoch mean)", .x = d.ex, .y = d.et, .n = ne, PAL_RGB(0), .dots = true};
    }
    if (ne)
        s[n++] = (plot_series){.label = "validation loss (end of epoch)", .x = d.ex, .y = d.ev, .n = ne, PAL_RGB(1),
                               .dots = true, .width = 1.5};
    plot_opts po = {.title = "Training and validation loss", .ylabel = "loss", .n_vlines = ns, .vlines = vx,
                    .vline_labels = vl, .fix_x = d.xhi > d.xlo, .xlo = d.xlo, .xhi = d.xhi,
                    .xstep = iter_x ? 0 : ne <= 15 ? 1 : ne <= 30 ? 2 : 0};
    plot_draw_lines(cv, (plot_rect){0, 0, W, H1}, &po, s, n);
    lr_panel(cv, (plot_rect){0, H1 - 10, W, H2 + 10}, &d, ns, vx);
    loss_curves_free(&d);
    return report_save_fig(c, cv, "loss.png", "Loss and learning rate",
                           "Top: training loss of every batch (faint) and smoothed, validation loss at the end of each "
                           "epoch; dashed lines mark where a phase (and image size) begins. Bottom: the learning rate "
                           "of each layer group (while the body is frozen only the head's rate acts).");
}

/* ---------------------------------------------------------------- metrics.png */

static bool excluded_key(const char *k) {
    static const char *const ex[] = {"epoch", "size", "train_loss", "valid_loss", "lr", "lrs", "iter", "seconds",
                                     "train_images_per_s", "best_thresh", "phase"};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        if (!strcmp(k, ex[i])) return true;
    return false;
}

int report_metrics_plot(report_ctx *c) {
    const run_log *r = c->r;
    const int ne = r->n_epochs;
    if (ne <= 0) {
        report_missing(c, "metrics.png: no finished epoch in the history yet");
        return 0;
    }
    /* the metric keys: numeric in [0, 1] in every row that has them */
    const char *keys[16];
    int nk = 0;
    for (int i = 0; i < ne; i++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, r->epochs[i].row) {
            if (!it->string || excluded_key(it->string) || nk >= 16) continue;
            bool seen = false;
            for (int k = 0; k < nk; k++) seen |= !strcmp(keys[k], it->string);
            if (!seen) keys[nk++] = it->string;
        }
    }
    double *x = malloc(sizeof(double) * ((size_t)ne * (size_t)(nk + 1)));
    if (!x) return sn_error("out of memory");
    plot_series s[16];
    char labels[16][96];
    int n = 0;
    for (int i = 0; i < ne; i++) x[i] = r->epochs[i].epoch;
    for (int k = 0; k < nk; k++) {
        double *y = x + (size_t)ne * (k + 1);
        bool ok = true;
        for (int i = 0; i < ne; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->epochs[i].row, keys[k]);
            y[i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (v && !(cJSON_IsNumber(v) && y[i] >= 0 && y[i] <= 1)) ok = false;
        }
        if (!ok) continue;
        const char *key = keys[k];
        if (!strcmp(key, "fbeta")) snprintf(labels[n], sizeof labels[n], "F2 at threshold %.2f", r->threshold);
        else if (!strcmp(key, "best_fbeta")) snprintf(labels[n], sizeof labels[n], "F2 at the best threshold");
        else if (!strcmp(key, "accuracy")) snprintf(labels[n], sizeof labels[n], "accuracy");
        else if (!strcmp(key, "all_right") && r->n_groups == 2)
            snprintf(labels[n], sizeof labels[n], "%s and %s both right", r->group_names[0], r->group_names[1]);
        else if (!strcmp(key, "all_right")) snprintf(labels[n], sizeof labels[n], "every label group right");
        else snprintf(labels[n], sizeof labels[n], "%s accuracy", key);
        const double *col = report_palette[n % 8];
        s[n] = (plot_series){.label = labels[n], .x = x, .y = y, .n = ne, .r = col[0], .g = col[1], .b = col[2],
                             .dots = true, .dashed = !strcmp(key, "best_fbeta")};
        n++;
    }
    int starts[64], ns = phase_segments(r, starts, 64);
    double vx[64];
    char vlab[64][48];
    const char *vl[64];
    for (int k = 0; k < ns; k++) {
        vx[k] = r->epochs[starts[k]].epoch - 0.5;
        segment_label(&r->epochs[starts[k]], vlab[k], sizeof vlab[k]);
        vl[k] = vlab[k];
    }
    plot_canvas *cv = plot_canvas_new(1000, 520);
    if (!cv) {
        free(x);
        return -1;
    }
    plot_opts po = {.title = "Validation metrics per epoch", .xlabel = "epoch", .ylabel = "score (0..1)",
                    .n_vlines = ns, .vlines = vx, .vline_labels = vl, .fix_x = true,
                    .xlo = r->epochs[0].epoch - 0.5, .xhi = r->epochs[ne - 1].epoch + 0.5, .fix_y = true, .ylo = -0.02,
                    .yhi = 1.02, .xstep = ne <= 15 ? 1 : ne <= 30 ? 2 : 0};
    plot_draw_lines(cv, (plot_rect){0, 0, 1000, 520}, &po, s, n);
    free(x);
    if (n == 0) report_missing(c, "metrics.png: the epoch rows hold no metric (drawn empty)");
    return report_save_fig(c, cv, "metrics.png", "Validation metrics per epoch",
                           "Scores on the validation images after each epoch (without TTA); dashed lines mark phases.");
}

/* ---------------------------------------------------------------- lr_find.png */

int report_lr_find_plot(report_ctx *c) {
    const cJSON *row = c->r->lr_find;
    if (!row) {
        report_missing(c, "lr_find.png: the run has no LR-finder sweep (the rate was given with --lr)");
        return 0;
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "lr_find_lr"), *b = cJSON_GetObjectItemCaseSensitive(row, "lr_find_loss");
    int n = cJSON_GetArraySize(a);
    double *x = malloc(sizeof(double) * (size_t)(n + 1) * 2), *y = x ? x + n + 1 : NULL;
    if (!x) return sn_error("out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *u = cJSON_GetArrayItem(a, i), *v = cJSON_GetArrayItem(b, i);
        x[i] = cJSON_IsNumber(u) ? u->valuedouble : NAN;
        y[i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    }
    double sug = report_jnum(row, "lr_find_suggestion"), mn = report_jnum(row, "lr_find_min");
    double steep = report_jnum(row, "lr_find_steepest");
    /* the points at the minimum and the steepest descent */
    double px[2] = {NAN, NAN}, py[2] = {NAN, NAN}, at[2] = {mn, steep};
    for (int k = 0; k < 2; k++) {
        double best = INFINITY;
        for (int i = 0; i < n && isfinite(at[k]) && at[k] > 0; i++)
            if (x[i] > 0 && fabs(log(x[i] / at[k])) < best) {
                best = fabs(log(x[i] / at[k]));
                px[k] = x[i];
                py[k] = y[i];
            }
    }
    char l_min[64], l_st[64], l_sug[64];
    snprintf(l_min, sizeof l_min, "minimum of the loss (lr %.2g)", mn);
    snprintf(l_st, sizeof l_st, "steepest descent (lr %.2g)", steep);
    snprintf(l_sug, sizeof l_sug, "suggested %.2g", sug);
    plot_series s[3] = {
        {.label = "training loss (smoothed)", .x = x, .y = y, .n = n, PAL_RGB(0)},
        {.label = l_min, .x = &px[0], .y = &py[0], .n = isfinite(px[0]) ? 1 : 0, PAL_RGB(2), .no_line = true},
        {.label = l_st, .x = &px[1], .y = &py[1], .n = isfinite(px[1]) ? 1 : 0, PAL_RGB(4), .no_line = true}};
    plot_opts po = {.title = "Learning-rate finder", .xlabel = "learning rate (log scale)",
                    .ylabel = "training loss (smoothed)", .logx = true, .has_marker = isfinite(sug) && sug > 0,
                    .marker_x = sug, .marker_label = l_sug};
    plot_canvas *cv = plot_canvas_new(900, 520);
    if (!cv) {
        free(x);
        return -1;
    }
    plot_draw_lines(cv, (plot_rect){0, 0, 900, 520}, &po, s, 3);
    free(x);
    char note[256];
    snprintf(note, sizeof note,
             "Training loss while the rate grows exponentially, on the frozen body. Suggested rate: %.3g "
             "(the minimum's rate / 10, or the steepest descent if lower).", sug);
    return report_save_fig(c, cv, "lr_find.png", "Learning-rate finder", note);
}
