/* report.c - plots and the HTML page of a training run (see report.h). */
#include "report/report.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/error.h"
#include "core/file.h"
#include "io/image.h"
#include "io/plot.h"
#include "report/run.h"
#include "classifier/metrics.h"

/* ---------------------------------------------------------------- helpers */

void report_smooth(const double *x, int n, double beta, double *out) {
    double avg = 0, last = NAN;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            out[i] = last;
            continue;
        }
        avg = beta * avg + (1 - beta) * x[i];
        k++;
        last = out[i] = avg / (1 - pow(beta, k));
    }
}

char *report_base64(const uint8_t *d, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1), *p = s;
    if (!s) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *p++ = A[v >> 18];
        *p++ = A[(v >> 12) & 63];
        *p++ = A[(v >> 6) & 63];
        *p++ = A[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *p++ = A[v >> 18];
        *p++ = A[(v >> 12) & 63];
        *p++ = i + 1 < n ? A[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    *p = 0;
    return s;
}

void report_fmt_number(double v, char *buf, size_t cap) {
    if (isnan(v)) snprintf(buf, cap, "%s", "");
    else if (v == floor(v) && fabs(v) < 1e12) snprintf(buf, cap, "%.0f", v);
    else if (fabs(v) >= 100) snprintf(buf, cap, "%.1f", v);
    else if (fabs(v) >= 0.01) snprintf(buf, cap, "%.4f", v);
    else snprintf(buf, cap, "%.3g", v);
}

static void html_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const double PAL[8][3] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05},  {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                                 {0.58, 0.4, 0.74},  {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.5, 0.5, 0.5}};

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---------------------------------------------------------------- the report's state */

typedef struct {
    char name[64];
    int lo, hi, k;            /* classes [lo, hi) */
    int *cm;                  /* k x k, rows true */
    double *precision, *recall;
    int *count;               /* true images per class */
    int n;                    /* images counted */
    double acc;
    bool confusion;           /* false: multi-label without groups (per-class at the threshold) */
} group_eval;

typedef struct {
    char title[96], file[4200], name[64];
    char note[512];
} figure;

typedef struct {
    const report_opts *o;
    run_log *r;
    char out[4096];
    cJSON *res, *files, *missing, *warnings;
    figure figs[24];
    int n_figs;
    group_eval groups[8];
    int n_groups;
    int *top;                 /* indices into r->preds, highest loss first */
    int n_top;
} ctx;

static int save_fig(ctx *c, plot_canvas *cv, const char *name, const char *title, const char *note) {
    figure *f = &c->figs[c->n_figs];
    snprintf(f->file, sizeof f->file, "%s/%s", c->out, name);
    int rc = plot_canvas_save(cv, f->file);
    plot_canvas_free(cv);
    if (rc < 0) return -1;
    snprintf(f->title, sizeof f->title, "%s", title);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->note, sizeof f->note, "%s", note ? note : "");
    if (c->n_figs < (int)(sizeof c->figs / sizeof c->figs[0]) - 1) c->n_figs++;
    cJSON_AddItemToArray(c->files, cJSON_CreateString(f->file));
    return 0;
}

static void missing(ctx *c, const char *what) { cJSON_AddItemToArray(c->missing, cJSON_CreateString(what)); }

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

static int loss_plot(ctx *c) {
    const run_log *r = c->r;
    const int nb = r->n_batches, ne = r->n_epochs;
    bool iter_x = true;
    for (int i = 0; i < ne; i++) iter_x &= isfinite(r->epochs[i].iter);
    if (nb == 0 && !iter_x && ne == 0) {
        missing(c, "loss.png: no batches and no epochs in the history yet");
        return 0;
    }
    if (nb > 0 && !iter_x) iter_x = ne == 0; /* batches but epochs without positions: batches only */
    double *bx = calloc((size_t)(nb + 1) * 6, sizeof(double)), *by = bx + nb + 1, *bs = by + nb + 1;
    double *lr[3] = {bs + nb + 1, bs + 2 * (nb + 1), bs + 3 * (nb + 1)};
    double *ex = calloc((size_t)(ne + 1) * 4, sizeof(double)), *ev = ex + ne + 1, *et = ev + ne + 1, *elr = et + ne + 1;
    if (!bx || !ex) {
        free(bx);
        free(ex);
        return sn_error("out of memory");
    }
    for (int i = 0; i < nb; i++) {
        bx[i] = r->batches[i].iter;
        by[i] = r->batches[i].loss;
    }
    double beta = nb > 0 ? fmin(0.98, fmax(0.5, 1 - 10.0 / nb)) : 0.98;
    report_smooth(by, nb, beta, bs);
    /* the rate of each layer group: the head's rate (logged per batch) times the group's share
     * of the peak rates of the batch's epoch */
    bool differential = false, known = false;
    for (int i = 0; i < ne; i++) known |= isfinite(r->epochs[i].lrs[0]);
    int ei = 0;
    for (int i = 0; i < nb; i++) {
        while (ei < ne && isfinite(r->epochs[ei].iter) && r->epochs[ei].iter < bx[i]) ei++;
        const run_epoch *e = ei < ne ? &r->epochs[ei] : NULL;
        for (int g = 0; g < 3; g++) {
            double share = e && isfinite(e->lrs[g]) && e->lrs[2] > 0 ? e->lrs[g] / e->lrs[2] : NAN;
            lr[g][i] = g == 2 ? r->batches[i].lr : r->batches[i].lr * share;
            if (g < 2 && isfinite(share) && fabs(share - 1) > 1e-6) differential = true;
        }
    }
    for (int i = 0; i < ne; i++) {
        ex[i] = iter_x ? r->epochs[i].iter : r->epochs[i].epoch;
        ev[i] = r->epochs[i].valid_loss;
        et[i] = r->epochs[i].train_loss;
        elr[i] = r->epochs[i].lr;
    }
    /* phase boundaries */
    int starts[64], ns = phase_segments(r, starts, 64);
    double vx[64];
    char vlab[64][48];
    const char *vl[64];
    for (int s = 0; s < ns; s++) {
        int i = starts[s];
        vx[s] = iter_x ? (i == 0 ? (nb ? fmin(0, bx[0]) : 0) : r->epochs[i - 1].iter) : r->epochs[i].epoch - 0.5;
        segment_label(&r->epochs[i], vlab[s], sizeof vlab[s]);
        vl[s] = vlab[s];
    }
    const int W = 1000, H1 = 480, H2 = 250;
    plot_canvas *cv = plot_canvas_new(W, H1 + H2);
    if (!cv) {
        free(bx);
        free(ex);
        return -1;
    }
    plot_series s[4];
    int n = 0;
    if (nb) {
        s[n++] = (plot_series){.label = "train loss (each batch)", .x = bx, .y = by, .n = nb, .r = PAL[0][0],
                               .g = PAL[0][1], .b = PAL[0][2], .alpha = 0.25, .width = 1};
        s[n++] = (plot_series){.label = "train loss (smoothed)", .x = bx, .y = bs, .n = nb, .r = PAL[0][0],
                               .g = PAL[0][1], .b = PAL[0][2], .width = 2.2};
    } else if (ne) {
        s[n++] = (plot_series){.label = "train loss (epoch mean)", .x = ex, .y = et, .n = ne, .r = PAL[0][0],
                               .g = PAL[0][1], .b = PAL[0][2], .dots = true};
    }
    if (ne)
        s[n++] = (plot_series){.label = "validation loss (end of epoch)", .x = ex, .y = ev, .n = ne, .r = PAL[1][0],
                               .g = PAL[1][1], .b = PAL[1][2], .dots = true, .width = 1.5};
    const char *xl = iter_x ? "iteration (optimiser steps)" : "epoch";
    double xlo = INFINITY, xhi = -INFINITY;
    for (int i = 0; i < nb; i++) xlo = fmin(xlo, bx[i]), xhi = fmax(xhi, bx[i]);
    for (int i = 0; i < ne; i++) xlo = fmin(xlo, ex[i]), xhi = fmax(xhi, ex[i]);
    if (iter_x) xlo = fmin(xlo, 0), xhi += (xhi - xlo) * 0.02; /* room for the last epoch's dot */
    else xlo -= 0.5, xhi += 0.5;
    plot_opts po = {.title = "Training and validation loss", .ylabel = "loss", .n_vlines = ns, .vlines = vx,
                    .vline_labels = vl, .fix_x = xhi > xlo, .xlo = xlo, .xhi = xhi,
                    .xstep = iter_x ? 0 : ne <= 15 ? 1 : ne <= 30 ? 2 : 0};
    plot_draw_lines(cv, (plot_rect){0, 0, W, H1}, &po, s, n);
    /* learning rates */
    plot_series ls[3];
    int nl = 0;
    const char *glab[3] = {"layer group 0 (early body)", "layer group 1 (late body)", "layer group 2 (head)"};
    if (nb) {
        if (differential) {
            for (int g = 0; g < 3; g++)
                ls[nl++] = (plot_series){.label = glab[g], .x = bx, .y = lr[g], .n = nb, .r = PAL[2 + g][0],
                                         .g = PAL[2 + g][1], .b = PAL[2 + g][2], .width = 1.8};
        } else {
            ls[nl++] = (plot_series){.label = known ? "learning rate (every layer group)" : "learning rate (head)",
                                     .x = bx, .y = lr[2], .n = nb,
                                     .r = PAL[4][0], .g = PAL[4][1], .b = PAL[4][2], .width = 1.8};
        }
    } else if (ne) {
        ls[nl++] = (plot_series){.label = "peak learning rate of the head", .x = ex, .y = elr, .n = ne, .r = PAL[4][0],
                                 .g = PAL[4][1], .b = PAL[4][2], .dots = true};
    }
    /* log scale, down to a thousandth of the highest rate (annealing reaches ~0 at the end of a cycle) */
    double lmax = 0, lmin = INFINITY;
    for (int k = 0; k < nl; k++)
        for (int i = 0; i < ls[k].n; i++)
            if (isfinite(ls[k].y[i]) && ls[k].y[i] > 0) lmax = fmax(lmax, ls[k].y[i]), lmin = fmin(lmin, ls[k].y[i]);
    plot_opts lo = {.xlabel = xl, .ylabel = "learning rate (log)", .n_vlines = ns, .vlines = vx, .fix_x = xhi > xlo,
                    .xlo = xlo, .xhi = xhi, .logy = true, .fix_y = lmax > 0, .ylo = fmax(lmin, lmax * 1e-3) / 1.3,
                    .yhi = lmax * 1.5, .xstep = iter_x ? 0 : ne <= 15 ? 1 : ne <= 30 ? 2 : 0};
    plot_draw_lines(cv, (plot_rect){0, H1 - 10, W, H2 + 10}, &lo, ls, nl);
    free(bx);
    free(ex);
    return save_fig(c, cv, "loss.png", "Loss and learning rate",
                    "Top: training loss of every batch (faint) and smoothed, validation loss at the end of each epoch; "
                    "dashed lines mark where a phase (and image size) begins. Bottom: the learning rate of each "
                    "layer group (while the body is frozen only the head's rate acts).");
}

/* ---------------------------------------------------------------- metrics.png */

static bool excluded_key(const char *k) {
    static const char *const ex[] = {"epoch", "size", "train_loss", "valid_loss", "lr", "lrs", "iter", "seconds",
                                     "train_images_per_s", "best_thresh", "phase"};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        if (!strcmp(k, ex[i])) return true;
    return false;
}

static int metrics_plot(ctx *c) {
    const run_log *r = c->r;
    const int ne = r->n_epochs;
    if (ne <= 0) {
        missing(c, "metrics.png: no finished epoch in the history yet");
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
        const double *col = PAL[n % 8];
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
    if (n == 0) missing(c, "metrics.png: the epoch rows hold no metric (drawn empty)");
    return save_fig(c, cv, "metrics.png", "Validation metrics per epoch",
                    "Scores on the validation images after each epoch (without TTA); dashed lines mark phases.");
}

/* ---------------------------------------------------------------- lr_find.png */

static int lr_find_plot(ctx *c) {
    const cJSON *row = c->r->lr_find;
    if (!row) {
        missing(c, "lr_find.png: the run has no LR-finder sweep (the rate was given with --lr)");
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
    double sug = jnum(row, "lr_find_suggestion"), mn = jnum(row, "lr_find_min"), steep = jnum(row, "lr_find_steepest");
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
        {.label = "training loss (smoothed)", .x = x, .y = y, .n = n, .r = PAL[0][0], .g = PAL[0][1], .b = PAL[0][2]},
        {.label = l_min, .x = &px[0], .y = &py[0], .n = isfinite(px[0]) ? 1 : 0, .r = PAL[2][0], .g = PAL[2][1],
         .b = PAL[2][2], .no_line = true},
        {.label = l_st, .x = &px[1], .y = &py[1], .n = isfinite(px[1]) ? 1 : 0, .r = PAL[4][0], .g = PAL[4][1],
         .b = PAL[4][2], .no_line = true}};
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
    return save_fig(c, cv, "lr_find.png", "Learning-rate finder", note);
}

/* ---------------------------------------------------------------- evaluations from the predictions */

static void free_groups(ctx *c) {
    for (int g = 0; g < c->n_groups; g++) {
        free(c->groups[g].cm);
        free(c->groups[g].precision);
        free(c->groups[g].recall);
        free(c->groups[g].count);
    }
}

static int evaluate(ctx *c) {
    const run_log *r = c->r;
    const int C = r->n_classes, N = r->n_preds;
    int ng = r->n_groups > 0 ? r->n_groups : 1;
    for (int g = 0; g < ng; g++) {
        group_eval *e = &c->groups[g];
        e->lo = r->n_groups ? r->group_lo[g] : 0;
        e->hi = r->n_groups ? r->group_hi[g] : C;
        e->k = e->hi - e->lo;
        e->confusion = r->n_groups > 0 || !r->multi;
        const char *task = r->run ? jstr(r->run, "task") : NULL; /* single-label: name it by the task */
        snprintf(e->name, sizeof e->name, "%s",
                 r->n_groups ? r->group_names[g] : !r->multi && task && *task ? task : "class");
        e->cm = calloc((size_t)e->k * e->k, sizeof(int));
        e->precision = malloc(sizeof(double) * (size_t)e->k);
        e->recall = malloc(sizeof(double) * (size_t)e->k);
        e->count = calloc((size_t)e->k, sizeof(int));
        c->n_groups = g + 1;
        if (!e->cm || !e->precision || !e->recall || !e->count) return sn_error("out of memory");
        const int k = e->k;
        if (e->confusion) {
            int right = 0;
            for (int i = 0; i < N; i++) {
                const run_pred *p = &r->preds[i];
                int t = -1;
                for (int j = e->lo; j < e->hi && t < 0; j++)
                    if (p->hot[j]) t = j - e->lo;
                if (t < 0) continue; /* no true class in this group */
                int pr = metrics_group_argmax(p->probs, e->lo, e->hi) - e->lo;
                e->cm[t * k + pr]++;
                e->n++;
                right += t == pr;
            }
            e->acc = e->n ? (double)right / e->n : NAN;
            for (int a = 0; a < k; a++) {
                int row = 0, col = 0;
                for (int b = 0; b < k; b++) {
                    row += e->cm[a * k + b];
                    col += e->cm[b * k + a];
                }
                e->count[a] = row;
                e->recall[a] = row ? (double)e->cm[a * k + a] / row : NAN;
                e->precision[a] = col ? (double)e->cm[a * k + a] / col : NAN;
            }
        } else { /* multi-label without groups: each class at the threshold */
            e->n = N;
            e->acc = NAN;
            for (int a = 0; a < k; a++) {
                int tp = 0, fp = 0, fn = 0;
                for (int i = 0; i < N; i++) {
                    bool pred = r->preds[i].probs[a] > r->threshold, truth = r->preds[i].hot[a];
                    tp += pred && truth;
                    fp += pred && !truth;
                    fn += !pred && truth;
                }
                e->count[a] = tp + fn;
                e->precision[a] = tp + fp ? (double)tp / (tp + fp) : NAN;
                e->recall[a] = tp + fn ? (double)tp / (tp + fn) : NAN;
            }
        }
    }
    return 0;
}

static void safe_name(const char *s, char *out, size_t cap) {
    size_t j = 0;
    for (; *s && j + 1 < cap; s++) {
        char ch = *s;
        out[j++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ? ch : '_';
    }
    out[j] = 0;
}

static int confusion_plots(ctx *c) {
    const run_log *r = c->r;
    cJSON *conf = cJSON_AddObjectToObject(c->res, "confusion");
    for (int g = 0; g < c->n_groups; g++) {
        group_eval *e = &c->groups[g];
        if (!e->confusion) {
            missing(c, "confusion matrices: a multi-label task without label groups has none (precision/recall "
                       "per class at the threshold instead)");
            return 0;
        }
        const int k = e->k;
        if (k <= 0) continue;
        cJSON *je = cJSON_AddObjectToObject(conf, e->name), *jc = cJSON_AddArrayToObject(je, "classes"),
              *jm = cJSON_AddArrayToObject(je, "matrix");
        for (int a = 0; a < k; a++) {
            cJSON_AddItemToArray(jc, cJSON_CreateString(r->classes[e->lo + a]));
            cJSON_AddItemToArray(jm, cJSON_CreateIntArray(e->cm + a * k, k));
        }
        if (k > 100) { /* the counts are in the JSON; a picture of them would not be readable */
            char m[200];
            snprintf(m, sizeof m, "confusion matrix of %s: %d classes are too many to draw (the counts are in --json)",
                     e->name, k);
            missing(c, m);
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
            const char *nm = r->classes[e->lo + a];
            char buf[160];
            snprintf(buf, sizeof buf, "%s (%d)", nm, e->count[a]);
            rl[a] = strdup(buf);
            if (strlen(buf) > longest) longest = strlen(buf);
            for (int b = 0; b < k; b++) shade[a * k + b] = e->count[a] ? (double)e->cm[a * k + b] / e->count[a] : 0;
        }
        double cell = fmin(64, fmax(22, 640.0 / k));
        double lab = fmin(260, longest * 7.5 + 10);
        int W = (int)(40 + lab + k * cell + 40), H = (int)(70 + k * cell + lab * 0.72 + 60);
        if (W < 560) W = 560;
        char title[160], sub[200];
        snprintf(title, sizeof title, "Confusion matrix: %s", e->name);
        snprintf(sub, sizeof sub, "%d validation images, accuracy %.3f; shade: share of the true class's images", e->n,
                 e->acc);
        const char **cl = (const char **)r->classes + e->lo;
        plot_heatmap hm = {.title = title, .subtitle = sub, .xlabel = "predicted", .ylabel = "true (images)",
                           .rows = k, .cols = k, .shade = shade, .counts = e->cm, .row_labels = (const char *const *)rl,
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
            rc = save_fig(c, cv, file, title, note);
        }
        for (int a = 0; a < k; a++) free(rl[a]);
        free(rl);
        free(shade);
        if (rc < 0) return -1;
    }
    return 0;
}

static int pr_plot(ctx *c) {
    const run_log *r = c->r;
    const int W = 900;
    int H = 0;
    for (int g = 0; g < c->n_groups; g++) H += 110 + c->groups[g].k * 34;
    if (H > 12000) { /* numbers in the page's table only */
        missing(c, "precision_recall.png: too many classes to draw (the page's table has the numbers)");
        return 0;
    }
    plot_canvas *cv = plot_canvas_new(W, H);
    if (!cv) return -1;
    double y = 0;
    const double cols[2][3] = {{PAL[0][0], PAL[0][1], PAL[0][2]}, {PAL[1][0], PAL[1][1], PAL[1][2]}};
    for (int g = 0; g < c->n_groups; g++) {
        group_eval *e = &c->groups[g];
        char **lab = calloc((size_t)e->k, sizeof(char *));
        if (!lab) {
            plot_canvas_free(cv);
            return sn_error("out of memory");
        }
        for (int a = 0; a < e->k; a++) {
            char buf[160];
            snprintf(buf, sizeof buf, "%s (%d)", r->classes[e->lo + a], e->count[a]);
            lab[a] = strdup(buf);
        }
        const double *vals[2] = {e->precision, e->recall};
        const char *sl[2] = {"precision", "recall"};
        char title[160];
        if (e->confusion)
            snprintf(title, sizeof title, "%s: precision and recall per class (true images in brackets)", e->name);
        else
            snprintf(title, sizeof title, "precision and recall per class at threshold %.2f (true images in brackets)",
                     r->threshold);
        plot_bars b = {.title = title, .xlabel = g == c->n_groups - 1 ? "score (0..1)" : NULL, .n = e->k,
                       .labels = (const char *const *)lab, .n_series = 2, .values = vals, .series_labels = sl,
                       .colours = cols, .lo = 0, .hi = 1, .label_width = 200};
        double h = 110 + e->k * 34;
        plot_draw_bars(cv, (plot_rect){0, y, W, h}, &b);
        y += h;
        for (int a = 0; a < e->k; a++) free(lab[a]);
        free(lab);
    }
    return save_fig(c, cv, "precision_recall.png", "Precision and recall per class",
                    "Precision: of the images predicted as the class, the share that are; recall: of the images of "
                    "the class, the share found. n/a: no image predicted as (or of) that class.");
}

/* ---------------------------------------------------------------- top losses */

static const run_log *sort_run;
static int by_loss(const void *a, const void *b) {
    const run_pred *p = &sort_run->preds[*(const int *)a], *q = &sort_run->preds[*(const int *)b];
    if (p->loss != q->loss) return p->loss < q->loss ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

/* "truth" and "pred" texts of a prediction, and the caption lines with their colours */
static int caption(const ctx *c, const run_pred *p, int rank, char lines[][200], double cols[][3], char *truth,
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

static int top_losses(ctx *c) {
    const run_log *r = c->r;
    cJSON *jt = cJSON_AddArrayToObject(c->res, "top_losses");
    int N = c->o->top_losses < r->n_preds ? c->o->top_losses : r->n_preds;
    if (N <= 0) return 0;
    int *idx = malloc(sizeof(int) * (size_t)r->n_preds);
    if (!idx) return sn_error("out of memory");
    for (int i = 0; i < r->n_preds; i++) idx[i] = i;
    sort_run = r;
    qsort(idx, (size_t)r->n_preds, sizeof(int), by_loss);
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
    return save_fig(c, cv, "top_losses.png", "Top losses", note);
}

/* ---------------------------------------------------------------- report.html */

static const char *key_title(const char *k) {
    static const char *const map[][2] = {
        {"epoch", "epoch"}, {"phase", "phase"}, {"size", "size (px)"}, {"train_loss", "train loss"},
        {"valid_loss", "valid loss"}, {"fbeta", "F2"}, {"best_thresh", "best threshold"},
        {"best_fbeta", "F2 at best threshold"}, {"accuracy", "accuracy"}, {"all_right", "all groups right"},
        {"lr", "lr (head, peak)"}, {"lrs", "peak lr per group"}, {"iter", "iteration"}, {"seconds", "seconds"},
        {"train_images_per_s", "train images/s"}, {"loss", "loss"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(k, map[i][0])) return map[i][1];
    return k;
}

static void html_value(FILE *f, const cJSON *v) {
    char buf[64];
    if (cJSON_IsNumber(v)) {
        report_fmt_number(v->valuedouble, buf, sizeof buf);
        fputs(buf, f);
    } else if (cJSON_IsString(v)) {
        html_text(f, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, v) {
            if (!first) fputs(" / ", f);
            first = false;
            if (cJSON_IsNumber(e)) fprintf(f, "%.3g", e->valuedouble);
            else html_value(f, e);
        }
    } else if (cJSON_IsBool(v)) {
        fputs(cJSON_IsTrue(v) ? "yes" : "no", f);
    } else if (v) {
        char *s = cJSON_PrintUnformatted(v);
        html_text(f, s);
        free(s);
    }
}

/* a table of objects: columns are the union of their keys in order of appearance */
static void html_table(FILE *f, const cJSON *const *rows, const char *const *row_names, int n, const char *first_col,
                       const char *const *lead, int n_lead) {
    const char *keys[64];
    int nk = 0;
    for (int j = 0; j < n_lead; j++) /* these columns first, when some row has them */
        for (int i = 0; i < n; i++)
            if (cJSON_GetObjectItemCaseSensitive(rows[i], lead[j])) {
                keys[nk++] = lead[j];
                break;
            }
    for (int i = 0; i < n; i++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, rows[i]) {
            bool seen = false;
            for (int k = 0; k < nk; k++) seen |= !strcmp(keys[k], it->string);
            if (!seen && nk < 64) keys[nk++] = it->string;
        }
    }
    fputs("<div class=wide><table>\n<tr>", f);
    if (first_col) {
        fputs("<th>", f);
        html_text(f, first_col);
        fputs("</th>", f);
    }
    for (int k = 0; k < nk; k++) {
        fputs("<th>", f);
        html_text(f, key_title(keys[k]));
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int i = 0; i < n; i++) {
        fputs("<tr>", f);
        if (first_col) {
            fputs("<td>", f);
            html_text(f, row_names[i]);
            fputs("</td>", f);
        }
        for (int k = 0; k < nk; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rows[i], keys[k]);
            fputs(cJSON_IsNumber(v) ? "<td class=n>" : "<td>", f);
            html_value(f, v);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table></div>\n", f);
}

static void kv(FILE *f, const char *k, const char *v) {
    if (!v || !*v) return;
    fputs("<tr><th>", f);
    html_text(f, k);
    fputs("</th><td>", f);
    html_text(f, v);
    fputs("</td></tr>\n", f);
}

static int embed(FILE *f, const figure *fig) {
    size_t len;
    uint8_t *b = sn_read_file(fig->file, &len, (size_t)256 << 20);
    if (!b) return -1;
    char *s = report_base64(b, len);
    free(b);
    if (!s) return sn_error("%s: out of memory", fig->file);
    fprintf(f, "<figure id=\"%s\"><img alt=\"%s\" src=\"data:image/png;base64,%s\">", fig->name, fig->name, s);
    free(s);
    if (*fig->note) {
        fputs("<figcaption>", f);
        html_text(f, fig->note);
        fputs("</figcaption>", f);
    }
    fputs("</figure>\n", f);
    return 0;
}

static const figure *find_fig(const ctx *c, const char *prefix) {
    for (int i = 0; i < c->n_figs; i++)
        if (!strncmp(c->figs[i].name, prefix, strlen(prefix))) return &c->figs[i];
    return NULL;
}

static int write_html(ctx *c, const char *path) {
    const run_log *r = c->r;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sn_error("%s: cannot write: %m", path);
    const cJSON *run = r->run, *tr = run ? cJSON_GetObjectItemCaseSensitive(run, "training") : NULL;
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>stylenet report: ", f);
    html_text(f, r->dir);
    fputs("</title>\n<style>\n"
          "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1060px;color:#222;padding:0 1em}\n"
          "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}\n"
          "table{border-collapse:collapse;margin:.6em 0;font-size:.9em}\n"
          "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\n"
          "th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
          "figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #ddd}\n"
          "figcaption{color:#555;font-size:.9em;margin-top:.3em}\n"
          ".wide{overflow-x:auto}.wide table{font-size:.82em}.wide td{white-space:nowrap}\n"
          ".note{background:#fff6e0;border:1px solid #e8c970;padding:.5em 1em}\n"
          "</style></head><body>\n<h1>Training report</h1>\n<p>Run directory <code>",
          f);
    html_text(f, r->dir);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(f, "</code>, report made %s by <code>stylenet report</code>.</p>\n", when);
    if (cJSON_GetArraySize(c->missing) + cJSON_GetArraySize(c->warnings) > 0) {
        fputs("<div class=note><p>Not in this report, or odd:</p><ul>\n", f);
        const cJSON *m;
        cJSON_ArrayForEach(m, c->missing) {
            fputs("<li>", f);
            html_text(f, m->valuestring);
            fputs("</li>\n", f);
        }
        cJSON_ArrayForEach(m, c->warnings) {
            fputs("<li>", f);
            html_text(f, m->valuestring);
            fputs("</li>\n", f);
        }
        fputs("</ul></div>\n", f);
    }

    /* summary */
    fputs("<h2>Summary</h2>\n<table>\n", f);
    char buf[1024], num[64];
    if (run) {
        snprintf(buf, sizeof buf, "%s (%s-label)", jstr(run, "task") ? jstr(run, "task") : "",
                 r->multi ? "multi" : "single");
        kv(f, "task", buf);
        kv(f, "model", jstr(run, "model"));
        report_fmt_number(jnum(run, "size"), num, sizeof num);
        snprintf(buf, sizeof buf, "%s, %s px", jstr(run, "arch") ? jstr(run, "arch") : "", num);
        kv(f, "architecture", buf);
        kv(f, "data", jstr(run, "data"));
        kv(f, "layout", jstr(run, "layout"));
        size_t p = (size_t)snprintf(buf, sizeof buf, "%d", r->n_classes);
        for (int g = 0; g < r->n_groups && p < sizeof buf; g++)
            p += (size_t)snprintf(buf + p, sizeof buf - p, "%s%s %d", g ? ", " : ": ", r->group_names[g],
                                  r->group_hi[g] - r->group_lo[g]);
        kv(f, "classes", buf);
        snprintf(buf, sizeof buf, "%.0f training, %.0f validation", jnum(run, "train_images"), jnum(run, "valid_images"));
        kv(f, "images", buf);
        if (tr) {
            kv(f, "recipe", jstr(tr, "recipe"));
            kv(f, "pretrained weights", jstr(tr, "pretrained"));
            snprintf(buf, sizeof buf, "%.3g", jnum(tr, "lr"));
            if (isfinite(jnum(tr, "lr"))) kv(f, "head learning rate", buf);
            report_fmt_number(jnum(tr, "seed"), buf, sizeof buf);
            kv(f, "seed", buf);
        }
    }
    snprintf(buf, sizeof buf, "%d", r->n_epochs);
    kv(f, "epochs", buf);
    double train_s = tr ? jnum(tr, "seconds") : NAN;
    if (isnan(train_s)) {
        train_s = 0;
        for (int i = 0; i < r->n_epochs; i++) train_s += isfinite(r->epochs[i].seconds) ? r->epochs[i].seconds : 0;
    }
    snprintf(buf, sizeof buf, "%.1f s", train_s);
    kv(f, "training time", buf);
    if (run && isfinite(jnum(run, "wall_seconds"))) {
        snprintf(buf, sizeof buf, "%.1f s", jnum(run, "wall_seconds"));
        kv(f, "wall time", buf);
    }
    fputs("</table>\n", f);

    /* final metrics */
    if (run) {
        const cJSON *rows[2];
        const char *names[2];
        int n = 0;
        const cJSON *v = tr ? cJSON_GetObjectItemCaseSensitive(tr, "valid") : NULL;
        const cJSON *vt = tr ? cJSON_GetObjectItemCaseSensitive(tr, "valid_tta") : NULL;
        if (!cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(run, "valid");
        if (cJSON_IsObject(v)) rows[n] = v, names[n++] = "validation";
        if (cJSON_IsObject(vt)) rows[n] = vt, names[n++] = "validation with TTA";
        if (n) {
            fprintf(f, "<h2>Final metrics</h2>\n<p>On the %.0f validation images%s. F2 at threshold %.2f; "
                       "the group columns are the accuracy of each label group.</p>\n",
                    jnum(run, "valid_images"), n > 1 ? ", without and with test-time augmentation" : "", r->threshold);
            html_table(f, rows, names, n, "", NULL, 0);
        }
    }

    /* figures */
    static const char *const order[][2] = {{"loss.png", "Loss and learning rate"},
                                           {"metrics.png", "Validation metrics per epoch"},
                                           {"lr_find.png", "Learning-rate finder"},
                                           {"confusion", "Confusion matrices"},
                                           {"precision_recall.png", "Precision and recall per class"},
                                           {"top_losses.png", "Top losses"}};
    for (size_t s = 0; s < sizeof order / sizeof order[0]; s++) {
        bool pr = !strcmp(order[s][0], "precision_recall.png") && c->n_groups > 0;
        if (!find_fig(c, order[s][0]) && !pr) continue;
        fprintf(f, "<h2>%s</h2>\n", order[s][1]);
        for (int i = 0; i < c->n_figs; i++)
            if (!strncmp(c->figs[i].name, order[s][0], strlen(order[s][0])) && embed(f, &c->figs[i]) < 0) {
                fclose(f);
                unlink(tmp);
                return -1;
            }
        if (pr) { /* the numbers too */
            fputs("<table>\n<tr><th>group</th><th>class</th><th>images</th><th>precision</th><th>recall</th></tr>\n", f);
            for (int g = 0; g < c->n_groups; g++)
                for (int a = 0; a < c->groups[g].k; a++) {
                    fputs("<tr><td>", f);
                    html_text(f, c->groups[g].name);
                    fputs("</td><td>", f);
                    html_text(f, r->classes[c->groups[g].lo + a]);
                    char p1[32], p2[32];
                    report_fmt_number(c->groups[g].precision[a], p1, sizeof p1);
                    report_fmt_number(c->groups[g].recall[a], p2, sizeof p2);
                    fprintf(f, "</td><td class=n>%d</td><td class=n>%s</td><td class=n>%s</td></tr>\n",
                            c->groups[g].count[a], *p1 ? p1 : "n/a", *p2 ? p2 : "n/a");
                }
            fputs("</table>\n", f);
        }
        if (!strcmp(order[s][0], "top_losses.png")) {
            fputs("<table>\n<tr><th>#</th><th>image</th><th>true</th><th>predicted</th><th>loss</th></tr>\n", f);
            for (int t = 0; t < c->n_top; t++) {
                const run_pred *p = &r->preds[c->top[t]];
                const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c->res, "top_losses"), t);
                fprintf(f, "<tr><td class=n>%d</td><td>", t + 1);
                html_text(f, p->rel);
                fputs("</td><td>", f);
                html_text(f, jstr(e, "truth"));
                fputs("</td><td>", f);
                html_text(f, jstr(e, "pred"));
                report_fmt_number(p->loss, num, sizeof num);
                fprintf(f, "</td><td class=n>%s</td></tr>\n", num);
            }
            fputs("</table>\n", f);
        }
    }

    /* epochs */
    if (r->n_epochs) {
        fputs("<h2>Epochs</h2>\n<p>Every epoch as the history records it (validation without TTA).</p>\n", f);
        const cJSON **rows = malloc(sizeof(cJSON *) * (size_t)r->n_epochs);
        if (rows) {
            for (int i = 0; i < r->n_epochs; i++) rows[i] = r->epochs[i].row;
            static const char *const lead[] = {"epoch", "phase", "size", "train_loss", "valid_loss"};
            html_table(f, rows, NULL, r->n_epochs, NULL, lead, 5);
            free(rows);
        }
    }
    fputs("</body></html>\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return sn_error("%s: write failed (disk full?)", path);
    }
    if (rename(tmp, path) != 0) {
        int rc = sn_error("%s: cannot write: %m", path);
        unlink(tmp);
        return rc;
    }
    cJSON_AddItemToArray(c->files, cJSON_CreateString(path));
    return 0;
}

/* ---------------------------------------------------------------- the whole report */

cJSON *report_make(const report_opts *o) {
    run_log *r = run_open(o->run_dir);
    if (!r) return NULL;
    ctx c = {.o = o, .r = r};
    if (o->out_dir) snprintf(c.out, sizeof c.out, "%s", o->out_dir);
    else snprintf(c.out, sizeof c.out, "%s/report", o->run_dir);
    if (mkdir(c.out, 0777) != 0 && errno != EEXIST) {
        sn_error("%s: cannot make the report folder: %m", c.out);
        run_free(r);
        return NULL;
    }
    struct stat st;
    if (stat(c.out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        sn_error("%s: not a folder", c.out);
        run_free(r);
        return NULL;
    }
    c.res = cJSON_CreateObject();
    cJSON_AddStringToObject(c.res, "run_dir", o->run_dir);
    cJSON_AddStringToObject(c.res, "out_dir", c.out);
    c.files = cJSON_AddArrayToObject(c.res, "files");
    c.missing = cJSON_AddArrayToObject(c.res, "missing");
    c.warnings = cJSON_AddArrayToObject(c.res, "warnings");
    cJSON_AddNumberToObject(c.res, "epochs", r->n_epochs);
    cJSON_AddNumberToObject(c.res, "predictions", r->n_preds);
    for (int i = 0; i < r->n_missing; i++) missing(&c, r->missing[i]);
    for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(c.warnings, cJSON_CreateString(r->warnings[i]));
    int rc = 0;
    if (loss_plot(&c) < 0 || metrics_plot(&c) < 0 || lr_find_plot(&c) < 0) rc = -1;
    if (rc == 0 && r->n_preds > 0) {
        if (evaluate(&c) < 0 || confusion_plots(&c) < 0 || pr_plot(&c) < 0 || top_losses(&c) < 0) rc = -1;
    }
    char html[4300];
    snprintf(html, sizeof html, "%s/report.html", c.out);
    if (rc == 0 && write_html(&c, html) < 0) rc = -1;
    if (rc == 0) cJSON_AddStringToObject(c.res, "html", html);
    free_groups(&c);
    free(c.top);
    run_free(r);
    if (rc < 0) {
        cJSON_Delete(c.res);
        return NULL;
    }
    return c.res;
}
