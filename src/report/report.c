/* report.c - a training run's report: the passes in order, and the helpers they share (see
 * report.h; the passes are in plots.c, confusion.c and html.c). */
#include "report/report.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "report/report_parts.h"

const double report_palette[8][3] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05},  {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                                     {0.58, 0.4, 0.74},  {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.5, 0.5, 0.5}};

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

void report_html_text(FILE *f, const char *s) {
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

int report_save_fig(report_ctx *c, plot_canvas *cv, const char *name, const char *title, const char *note) {
    report_figure *f = &c->figs[c->n_figs];
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

void report_missing(report_ctx *c, const char *what) { cJSON_AddItemToArray(c->missing, cJSON_CreateString(what)); }

/* ---------------------------------------------------------------- the whole report */

cJSON *report_make(const report_opts *o) {
    run_log *r = run_open(o->run_dir);
    if (!r) return NULL;
    report_ctx c = {.o = o, .r = r};
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
    for (int i = 0; i < r->n_missing; i++) report_missing(&c, r->missing[i]);
    for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(c.warnings, cJSON_CreateString(r->warnings[i]));
    int rc = 0;
    if (report_loss_plot(&c) < 0 || report_metrics_plot(&c) < 0 || report_lr_find_plot(&c) < 0) rc = -1;
    if (rc == 0 && r->n_preds > 0) {
        if (report_evaluate(&c) < 0 || report_confusion_plots(&c) < 0 || report_pr_plot(&c) < 0 ||
            report_reliability_plot(&c) < 0 || report_top_losses(&c) < 0)
            rc = -1;
    }
    char html[4300];
    snprintf(html, sizeof html, "%s/report.html", c.out);
    if (rc == 0 && report_write_html(&c, html) < 0) rc = -1;
    if (rc == 0) cJSON_AddStringToObject(c.res, "html", html);
    report_free_groups(&c);
    free(c.top);
    run_free(r);
    if (rc < 0) {
        cJSON_Delete(c.res);
        return NULL;
    }
    return c.res;
}
