/* predictions.c - validation predictions and run facts for reports (see predictions.h). */
#include "train/predictions.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/file.h"
#include "classifier/metrics.h"
#include "train/recipe.h"

/* JSON text of a string (quoted, escaped) into a malloc'd buffer */
static char *json_str(const char *s) {
    cJSON *j = cJSON_CreateString(s ? s : "");
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t;
}

static void abs_path(const char *p, char *out, size_t cap) {
    char buf[PATH_MAX];
    if (p && realpath(p, buf)) snprintf(out, cap, "%s", buf);
    else snprintf(out, cap, "%s", p ? p : "");
}

/* what write_predictions writes */
typedef struct {
    const dataset *ds;
    const ds_split *sp;
    const float *probs;
} pred_rows;

/* a JSON line per validation image into f (sn_write_file_atomic's writer) */
static int pred_write(FILE *f, void *ctx) {
    const pred_rows *p = ctx;
    const dataset *ds = p->ds;
    const int C = ds->n_classes;
    const bool multi = ds->kind == DS_MULTI;
    for (int i = 0; i < p->sp->n_valid; i++) {
        const int item = p->sp->valid[i];
        const ds_item *it = &ds->items[item];
        char full[PATH_MAX];
        abs_path(it->path, full, sizeof full);
        char *jp = json_str(full), *jr = json_str(it->rel ? it->rel : it->path);
        if (!jp || !jr) {
            free(jp);
            free(jr);
            return sn_error("out of memory");
        }
        fprintf(f, "{\"item\":%d,\"path\":%s,\"rel\":%s,\"truth\":[", item, jp, jr);
        free(jp);
        free(jr);
        const uint8_t *h = ds_hot(ds, item);
        int k = 0;
        for (int c = 0; c < C; c++)
            if (h[c]) fprintf(f, "%s%d", k++ ? "," : "", c);
        fputs("],\"probs\":[", f);
        const float *pr = p->probs + (size_t)i * C;
        for (int c = 0; c < C; c++) fprintf(f, "%s%.9g", c ? "," : "", (double)pr[c]);
        fprintf(f, "],\"loss\":%.9g}\n", metrics_image_loss(C, pr, h, multi));
    }
    return 0;
}

static int write_predictions(const char *path, const dataset *ds, const ds_split *sp, const float *probs) {
    pred_rows p = {ds, sp, probs};
    return sn_write_file_atomic(path, pred_write, &p);
}

/* a text and a newline into f (sn_write_file_atomic's writer) */
static int text_write(FILE *f, void *ctx) {
    fputs(ctx, f);
    fputc('\n', f);
    return 0;
}

static int write_run(const char *path, const classifier *m, const dataset *ds, const ds_split *sp, const char *model_path,
                     double wall, const eval_result *r) {
    const bool multi = ds->kind == DS_MULTI;
    char buf[PATH_MAX];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "format", 1);
    cJSON_AddStringToObject(o, "kind", multi ? "multi" : "single");
    cJSON_AddStringToObject(o, "task", ds->task ? ds->task : m->task);
    abs_path(model_path, buf, sizeof buf);
    cJSON_AddStringToObject(o, "model", buf);
    cJSON_AddStringToObject(o, "arch", m->arch);
    cJSON_AddNumberToObject(o, "size", m->size);
    cJSON_AddNumberToObject(o, "threshold", m->threshold);
    cJSON_AddNumberToObject(o, "temperature", m->temperature > 0 ? m->temperature : 1);
    abs_path(ds->root, buf, sizeof buf);
    cJSON_AddStringToObject(o, "data", buf);
    cJSON_AddStringToObject(o, "layout", ds->layout ? ds->layout : "");
    classifier_classes_json(o, m);
    cJSON_AddNumberToObject(o, "train_images", sp->n_train);
    cJSON_AddNumberToObject(o, "valid_images", sp->n_valid);
    cJSON_AddNumberToObject(o, "wall_seconds", wall);
    recipe_add_result(o, "valid", "loss", r, multi, ds->group_names);
    cJSON *h = m->history ? cJSON_Parse(m->history) : NULL;
    if (h) {
        cJSON_DeleteItemFromObject(h, "epochs");
        cJSON_AddItemToObject(o, "training", h);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return sn_error("%s: out of memory", path);
    int rc = sn_write_file_atomic(path, text_write, text);
    free(text);
    return rc;
}

int predictions_write(const char *run_dir, classifier *m, dataset *ds, const ds_split *split, const learner_opts *opts,
                      const char *model_path, double wall_seconds) {
    if (split->n_valid <= 0) return 0; /* nothing to predict */
    learner_opts lo = *opts;
    lo.run_dir = NULL;
    lo.quiet = true;
    lo.progress = false;
    lo.stop_after = 0;
    char pp[4200], rp[4200];
    snprintf(pp, sizeof pp, "%s/valid_predictions.jsonl", run_dir);
    snprintf(rp, sizeof rp, "%s/run.json", run_dir);
    float *probs = malloc(sizeof(float) * (size_t)split->n_valid * ds->n_classes);
    learner *l = probs ? learner_create(m, ds, split, &lo) : NULL;
    eval_result r;
    int rc = -1;
    if (!probs) sn_error("out of memory");
    else if (l && learner_validate(l, m->size, 0, &r, probs) == 0)
        rc = !learner_writes(l) ? 0 /* rank 0 of a data-parallel run writes them */
             : write_predictions(pp, ds, split, probs) < 0 ? -1 : write_run(rp, m, ds, split, model_path, wall_seconds, &r);
    if (rc < 0 && !strstr(sn_last_error(), run_dir)) sn_error_prefix("%s", pp);
    learner_free(l);
    free(probs);
    return rc;
}
