/* html.c - report.html: the summary, the final metrics, every figure embedded as a data URI, and
 * the per-epoch table (report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "core/file.h"
#include "report/report_parts.h"

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
        report_html_text(f, v->valuestring);
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
        report_html_text(f, s);
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
        report_html_text(f, first_col);
        fputs("</th>", f);
    }
    for (int k = 0; k < nk; k++) {
        fputs("<th>", f);
        report_html_text(f, key_title(keys[k]));
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int i = 0; i < n; i++) {
        fputs("<tr>", f);
        if (first_col) {
            fputs("<td>", f);
            report_html_text(f, row_names[i]);
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
    report_html_text(f, k);
    fputs("</th><td>", f);
    report_html_text(f, v);
    fputs("</td></tr>\n", f);
}

static int embed(FILE *f, const report_figure *fig) {
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
        report_html_text(f, fig->note);
        fputs("</figcaption>", f);
    }
    fputs("</figure>\n", f);
    return 0;
}

static const report_figure *find_fig(const report_ctx *c, const char *prefix) {
    for (int i = 0; i < c->n_figs; i++)
        if (!strncmp(c->figs[i].name, prefix, strlen(prefix))) return &c->figs[i];
    return NULL;
}

/* the head of the page: title, style, where it comes from, what is missing */
static void html_head(FILE *f, const report_ctx *c) {
    const run_log *r = c->r;
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>stylenet report: ", f);
    report_html_text(f, r->dir);
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
    report_html_text(f, r->dir);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(f, "</code>, report made %s by <code>stylenet report</code>.</p>\n", when);
    if (cJSON_GetArraySize(c->missing) + cJSON_GetArraySize(c->warnings) > 0) {
        fputs("<div class=note><p>Not in this report, or odd:</p><ul>\n", f);
        const cJSON *m;
        cJSON_ArrayForEach(m, c->missing) {
            fputs("<li>", f);
            report_html_text(f, m->valuestring);
            fputs("</li>\n", f);
        }
        cJSON_ArrayForEach(m, c->warnings) {
            fputs("<li>", f);
            report_html_text(f, m->valuestring);
            fputs("</li>\n", f);
        }
        fputs("</ul></div>\n", f);
    }
}

/* the summary table: task, model, data, classes, images, recipe, times */
static void html_summary(FILE *f, const run_log *r) {
    const cJSON *run = r->run, *tr = run ? cJSON_GetObjectItemCaseSensitive(run, "training") : NULL;
    fputs("<h2>Summary</h2>\n<table>\n", f);
    char buf[1024], num[64];
    if (run) {
        snprintf(buf, sizeof buf, "%s (%s-label)", report_jstr(run, "task") ? report_jstr(run, "task") : "",
                 r->multi ? "multi" : "single");
        kv(f, "task", buf);
        kv(f, "model", report_jstr(run, "model"));
        report_fmt_number(report_jnum(run, "size"), num, sizeof num);
        snprintf(buf, sizeof buf, "%s, %s px", report_jstr(run, "arch") ? report_jstr(run, "arch") : "", num);
        kv(f, "architecture", buf);
        kv(f, "data", report_jstr(run, "data"));
        kv(f, "layout", report_jstr(run, "layout"));
        size_t p = (size_t)snprintf(buf, sizeof buf, "%d", r->n_classes);
        for (int g = 0; g < r->n_groups && p < sizeof buf; g++)
            p += (size_t)snprintf(buf + p, sizeof buf - p, "%s%s %d", g ? ", " : ": ", r->group_names[g],
                                  r->group_hi[g] - r->group_lo[g]);
        kv(f, "classes", buf);
        snprintf(buf, sizeof buf, "%.0f training, %.0f validation", report_jnum(run, "train_images"),
                 report_jnum(run, "valid_images"));
        kv(f, "images", buf);
        if (tr) {
            kv(f, "recipe", report_jstr(tr, "recipe"));
            kv(f, "pretrained weights", report_jstr(tr, "pretrained"));
            snprintf(buf, sizeof buf, "%.3g", report_jnum(tr, "lr"));
            if (isfinite(report_jnum(tr, "lr"))) kv(f, "head learning rate", buf);
            report_fmt_number(report_jnum(tr, "seed"), buf, sizeof buf);
            kv(f, "seed", buf);
        }
    }
    snprintf(buf, sizeof buf, "%d", r->n_epochs);
    kv(f, "epochs", buf);
    double train_s = tr ? report_jnum(tr, "seconds") : NAN;
    if (isnan(train_s)) {
        train_s = 0;
        for (int i = 0; i < r->n_epochs; i++) train_s += isfinite(r->epochs[i].seconds) ? r->epochs[i].seconds : 0;
    }
    snprintf(buf, sizeof buf, "%.1f s", train_s);
    kv(f, "training time", buf);
    if (run && isfinite(report_jnum(run, "wall_seconds"))) {
        snprintf(buf, sizeof buf, "%.1f s", report_jnum(run, "wall_seconds"));
        kv(f, "wall time", buf);
    }
    fputs("</table>\n", f);
}

/* the final metrics, without and with TTA */
static void html_final_metrics(FILE *f, const run_log *r) {
    const cJSON *run = r->run, *tr = run ? cJSON_GetObjectItemCaseSensitive(run, "training") : NULL;
    if (!run) return;
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
                report_jnum(run, "valid_images"), n > 1 ? ", without and with test-time augmentation" : "",
                r->threshold);
        html_table(f, rows, names, n, "", NULL, 0);
    }
}

/* the numbers of precision_recall.png */
static void html_pr_table(FILE *f, const report_ctx *c) {
    fputs("<table>\n<tr><th>group</th><th>class</th><th>images</th><th>precision</th><th>recall</th></tr>\n", f);
    for (int g = 0; g < c->n_groups; g++) {
        const report_group *e = &c->groups[g];
        for (int a = 0; a < e->m.k; a++) {
            fputs("<tr><td>", f);
            report_html_text(f, e->name);
            fputs("</td><td>", f);
            report_html_text(f, c->r->classes[e->m.lo + a]);
            char p1[32], p2[32];
            report_fmt_number(e->m.precision[a], p1, sizeof p1);
            report_fmt_number(e->m.recall[a], p2, sizeof p2);
            fprintf(f, "</td><td class=n>%d</td><td class=n>%s</td><td class=n>%s</td></tr>\n", e->m.count[a],
                    *p1 ? p1 : "n/a", *p2 ? p2 : "n/a");
        }
    }
    fputs("</table>\n", f);
}

/* the images of top_losses.png with their truth, prediction and loss */
static void html_top_table(FILE *f, const report_ctx *c) {
    char num[64];
    fputs("<table>\n<tr><th>#</th><th>image</th><th>true</th><th>predicted</th><th>loss</th></tr>\n", f);
    for (int t = 0; t < c->n_top; t++) {
        const run_pred *p = &c->r->preds[c->top[t]];
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c->res, "top_losses"), t);
        fprintf(f, "<tr><td class=n>%d</td><td>", t + 1);
        report_html_text(f, p->rel);
        fputs("</td><td>", f);
        report_html_text(f, report_jstr(e, "truth"));
        fputs("</td><td>", f);
        report_html_text(f, report_jstr(e, "pred"));
        report_fmt_number(p->loss, num, sizeof num);
        fprintf(f, "</td><td class=n>%s</td></tr>\n", num);
    }
    fputs("</table>\n", f);
}

/* the figures in their sections, embedded; -1 if one cannot be read back */
static int html_figures(FILE *f, const report_ctx *c) {
    static const char *const order[][2] = {{"loss.png", "Loss and learning rate"},
                                           {"metrics.png", "Validation metrics per epoch"},
                                           {"lr_find.png", "Learning-rate finder"},
                                           {"confusion", "Confusion matrices"},
                                           {"precision_recall.png", "Precision and recall per class"},
                                           {"reliability.png", "Calibration: reliability of the probabilities"},
                                           {"top_losses.png", "Top losses"}};
    for (size_t s = 0; s < sizeof order / sizeof order[0]; s++) {
        bool pr = !strcmp(order[s][0], "precision_recall.png") && c->n_groups > 0;
        if (!find_fig(c, order[s][0]) && !pr) continue;
        fprintf(f, "<h2>%s</h2>\n", order[s][1]);
        for (int i = 0; i < c->n_figs; i++)
            if (!strncmp(c->figs[i].name, order[s][0], strlen(order[s][0])) && embed(f, &c->figs[i]) < 0) return -1;
        if (pr) html_pr_table(f, c); /* the numbers too */
        if (!strcmp(order[s][0], "top_losses.png")) html_top_table(f, c);
    }
    return 0;
}

/* every epoch row of the history */
static void html_epochs(FILE *f, const run_log *r) {
    if (!r->n_epochs) return;
    fputs("<h2>Epochs</h2>\n<p>Every epoch as the history records it (validation without TTA).</p>\n", f);
    const cJSON **rows = malloc(sizeof(cJSON *) * (size_t)r->n_epochs);
    if (rows) {
        for (int i = 0; i < r->n_epochs; i++) rows[i] = r->epochs[i].row;
        static const char *const lead[] = {"epoch", "phase", "size", "train_loss", "valid_loss"};
        html_table(f, rows, NULL, r->n_epochs, NULL, lead, 5);
        free(rows);
    }
}

/* report.html's contents into f (sn_write_file_atomic's writer) */
static int html_write(FILE *f, void *ctx) {
    report_ctx *c = ctx;
    html_head(f, c);
    html_summary(f, c->r);
    html_final_metrics(f, c->r);
    if (html_figures(f, c) < 0) return -1;
    html_epochs(f, c->r);
    fputs("</body></html>\n", f);
    return 0;
}

int report_write_html(report_ctx *c, const char *path) {
    if (sn_write_file_atomic(path, html_write, c) < 0) return -1;
    cJSON_AddItemToArray(c->files, cJSON_CreateString(path));
    return 0;
}
