/* report_parts.h - what the pieces of report_make share (report.c, plots.c, confusion.c, html.c);
 * not for use outside src/report/.
 *
 * report_make fills one report_ctx: the run read by run_open, the output folder, the result
 * JSON (files written, what is missing, warnings), the figures in the order they were drawn, and
 * the per-group evaluation of the validation predictions.  Each pass returns 0, or -1 with an
 * error; a pass that lacks its input adds a line to "missing" and returns 0.
 */
#ifndef STYLENET_REPORT_PARTS_H
#define STYLENET_REPORT_PARTS_H
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include "classifier/metrics.h"
#include "io/plot.h"
#include "report/report.h"
#include "report/run.h"

typedef struct {
    char name[64];
    bool confusion;           /* false: multi-label without groups (per-class at the threshold) */
    metrics_group m;          /* classifier/metrics.h: matrix, counts, precision, recall, accuracy */
} report_group;

typedef struct {
    char title[96], file[4200], name[64];
    char note[512];
} report_figure;

typedef struct {
    const report_opts *o;
    run_log *r;
    char out[4096];
    cJSON *res, *files, *missing, *warnings;
    report_figure figs[24];
    int n_figs;
    report_group groups[8];   /* as many as run_log holds */
    int n_groups;
    int *top;                 /* indices into r->preds, highest loss first */
    int n_top;
} report_ctx;

/* colours of the series, matplotlib's first eight */
extern const double report_palette[8][3];

static inline double report_jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static inline const char *report_jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* saves the canvas as out/name (and frees it), lists it in the result and the page's figures */
int report_save_fig(report_ctx *c, plot_canvas *cv, const char *name, const char *title, const char *note);
/* adds a line to the result's "missing" list */
void report_missing(report_ctx *c, const char *what);
/* s with & < > " escaped */
void report_html_text(FILE *f, const char *s);

/* plots.c */
int report_loss_plot(report_ctx *c);
int report_metrics_plot(report_ctx *c);
int report_lr_find_plot(report_ctx *c);
/* confusion.c: the groups from the predictions, then their figures */
int report_evaluate(report_ctx *c);
void report_free_groups(report_ctx *c);
int report_confusion_plots(report_ctx *c);
int report_pr_plot(report_ctx *c);
int report_top_losses(report_ctx *c);
/* reliability.c */
int report_reliability_plot(report_ctx *c);
/* html.c */
int report_write_html(report_ctx *c, const char *path);
#endif
