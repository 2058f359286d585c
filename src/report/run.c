/* run.c - reading a training run directory (see run.h). */
#include "report/run.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/file.h"

static void add_line(char ***list, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_line(char ***list, int *n, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **l = realloc(*list, sizeof(char *) * (size_t)(*n + 1));
    if (!l) return;
    *list = l;
    if ((l[*n] = strdup(buf))) (*n)++;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* the whole file as a NUL-terminated string; NULL (sn_error) when it cannot be read; *absent set
 * when it does not exist */
static char *slurp(const char *path, size_t *len, bool *absent) {
    struct stat st;
    *absent = stat(path, &st) != 0 && errno == ENOENT;
    if (*absent) {
        sn_error("%s: no such file", path);
        return NULL;
    }
    uint8_t *b = sn_read_file(path, len, (size_t)1 << 30);
    if (!b) return NULL;
    char *s = malloc(*len + 1);
    if (!s) {
        free(b);
        sn_error("%s: out of memory", path);
        return NULL;
    }
    memcpy(s, b, *len);
    s[*len] = 0;
    free(b);
    return s;
}

/* the text of the run's file `name` (its full name into path[4200]); NULL when it cannot be read:
 * *rc = -1 (sn_error) or, for a file that does not exist and may be absent, *rc = 0 and
 * "name: absent_msg" added to r->missing */
static char *run_file(run_log *r, const char *name, bool may_be_absent, const char *absent_msg, char *path, size_t *len,
                      int *rc) {
    snprintf(path, 4200, "%s/%s", r->dir, name);
    bool absent;
    char *text = slurp(path, len, &absent);
    *rc = -1;
    if (!text && absent && may_be_absent) {
        add_line(&r->missing, &r->n_missing, "%s: %s", name, absent_msg);
        *rc = 0;
    } else if (!text && absent) {
        sn_error("%s: %s", path, absent_msg);
    }
    return text;
}

/* calls fn on every non-empty line (1-based numbers); a line that is not a JSON object is an
 * error, except a last line without its newline (cut short), which adds a warning */
typedef int (*line_fn)(run_log *r, const cJSON *o, int line, const char *path);
static int each_line(run_log *r, const char *path, char *text, size_t len, line_fn fn) {
    int line = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        bool cut = nl == NULL;
        if (!nl) nl = end;
        *nl = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            cJSON *o = cJSON_Parse(p);
            if (!o || !cJSON_IsObject(o)) {
                cJSON_Delete(o);
                if (cut) {
                    add_line(&r->warnings, &r->n_warnings,
                             "%s:%d: the last line is cut short (the run was stopped while writing it); ignored", path,
                             line);
                    return 0;
                }
                return sn_error("%s:%d: not a JSON object (corrupt or truncated line: \"%.40s%s\")", path, line, p,
                                strlen(p) > 40 ? "..." : "");
            }
            int rc = fn(r, o, line, path);
            cJSON_Delete(o);
            if (rc < 0) return -1;
        }
        p = nl + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- history.jsonl */

static int history_row(run_log *r, const cJSON *o, int line, const char *path) {
    if (cJSON_GetObjectItemCaseSensitive(o, "lr_find_lr")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "lr_find_lr"), *b = cJSON_GetObjectItemCaseSensitive(o, "lr_find_loss");
        if (!cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return sn_error("%s:%d: an LR-finder row needs arrays lr_find_lr and lr_find_loss of one length", path, line);
        cJSON_Delete(r->lr_find);
        r->lr_find = cJSON_Duplicate(o, true);
        return 0;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "epoch")) {
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "epoch")))
            return sn_error("%s:%d: an epoch row whose 'epoch' is not a number", path, line);
        double *ni = realloc(r->seen_iter, sizeof(double) * (size_t)(cJSON_GetArraySize(r->epoch_rows) + 1));
        if (!ni) return sn_error("%s: out of memory", path);
        r->seen_iter = ni;
        ni[cJSON_GetArraySize(r->epoch_rows)] = r->n_batches ? r->batches[r->n_batches - 1].iter : NAN;
        cJSON_AddItemToArray(r->epoch_rows, cJSON_Duplicate(o, true));
        return 0;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "iter") && cJSON_GetObjectItemCaseSensitive(o, "loss")) {
        double it = num(o, "iter"), loss = num(o, "loss");
        if (!isfinite(it) || isnan(loss))
            return sn_error("%s:%d: a batch row needs numbers 'iter' and 'loss'", path, line);
        run_batch *nb = realloc(r->batches, sizeof *nb * (size_t)(r->n_batches + 1));
        if (!nb) return sn_error("%s: out of memory", path);
        r->batches = nb;
        nb[r->n_batches++] = (run_batch){it, loss, num(o, "lr")};
        return 0;
    }
    return 0; /* a kind of row this reader does not know */
}

static int read_history(run_log *r) {
    char path[4200];
    size_t len;
    int rc;
    char *text = run_file(r, "history.jsonl", false,
                          "missing: not a run directory of `stylenet train --run-dir` (or the run never started)", path, &len, &rc);
    if (!text) return rc;
    rc = each_line(r, path, text, len, history_row);
    free(text);
    if (rc < 0) return -1;
    r->n_epochs = cJSON_GetArraySize(r->epoch_rows);
    r->epochs = calloc((size_t)r->n_epochs + 1, sizeof *r->epochs);
    if (!r->epochs) return sn_error("%s: out of memory", path);
    for (int i = 0; i < r->n_epochs; i++) {
        const cJSON *o = cJSON_GetArrayItem(r->epoch_rows, i);
        run_epoch *e = &r->epochs[i];
        e->row = o;
        e->epoch = (int)num(o, "epoch");
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "phase");
        e->phase = cJSON_IsString(ph) ? ph->valuestring : "";
        double sz = num(o, "size");
        e->size = isfinite(sz) ? (int)sz : 0;
        e->iter = num(o, "iter");
        e->train_loss = num(o, "train_loss");
        e->valid_loss = num(o, "valid_loss");
        e->lr = num(o, "lr");
        e->seconds = num(o, "seconds");
        const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(o, "lrs");
        for (int g = 0; g < 3; g++) {
            const cJSON *v = cJSON_IsArray(lrs) ? cJSON_GetArrayItem(lrs, g) : NULL;
            e->lrs[g] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        }
        /* older histories lack the epoch's iteration: the last batch row before the epoch row tells it */
        if (isnan(e->iter) && r->seen_iter) e->iter = r->seen_iter[i];
    }
    if (r->n_epochs == 0)
        add_line(&r->missing, &r->n_missing, "epochs: the history has no finished epoch yet (no loss curves per epoch, no metrics)");
    if (r->n_batches == 0)
        add_line(&r->missing, &r->n_missing, "per-batch losses: none in the history (training curves show epochs only)");
    return 0;
}

/* ---------------------------------------------------------------- run.json */

static int read_run(run_log *r) {
    char path[4200];
    size_t len;
    int rc;
    char *text = run_file(r, "run.json", true, "the run has not finished (no class names, final metrics or wall time)",
                          path, &len, &rc);
    if (!text) return rc;
    r->run = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(r->run)) return sn_error("%s: not a JSON object (corrupt or truncated)", path);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(r->run, "classes");
    int n = cJSON_GetArraySize(cls);
    if (!cJSON_IsArray(cls) || n < 1) return sn_error("%s: no 'classes' list", path);
    r->classes = calloc((size_t)n, sizeof(char *));
    if (!r->classes) return sn_error("%s: out of memory", path);
    for (int c = 0; c < n; c++) {
        const cJSON *v = cJSON_GetArrayItem(cls, c);
        if (!cJSON_IsString(v)) return sn_error("%s: class %d is not a string", path, c);
        r->classes[c] = v->valuestring;
    }
    r->n_classes = n;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r->run, "kind");
    r->multi = cJSON_IsString(kind) && !strcmp(kind->valuestring, "multi");
    double th = num(r->run, "threshold");
    if (isfinite(th) && th > 0 && th < 1) r->threshold = th;
    double temp = num(r->run, "temperature");
    if (isfinite(temp) && temp > 0) r->temperature = temp;
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(r->run, "groups"), *g;
    int k = 0, expect = 0;
    cJSON_ArrayForEach(g, groups) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(g, "name");
        double lo = num(g, "first"), hi = num(g, "end");
        if (k >= 8 || !cJSON_IsString(name) || !(lo == expect) || !(hi > lo) || hi > n)
            return sn_error("%s: label group %d is not a named run of classes following the previous one", path, k);
        snprintf(r->group_names[k], sizeof r->group_names[k], "%s", name->valuestring);
        r->group_lo[k] = (int)lo;
        r->group_hi[k] = (int)hi;
        expect = (int)hi;
        k++;
    }
    if (k && expect != n) return sn_error("%s: the label groups cover %d of the %d classes", path, expect, n);
    r->n_groups = k;
    return 0;
}

/* ---------------------------------------------------------------- valid_predictions.jsonl */

static int pred_row(run_log *r, const cJSON *o, int line, const char *path) {
    const int C = r->n_classes;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path"), *rel = cJSON_GetObjectItemCaseSensitive(o, "rel");
    const cJSON *truth = cJSON_GetObjectItemCaseSensitive(o, "truth"), *probs = cJSON_GetObjectItemCaseSensitive(o, "probs");
    double loss = num(o, "loss");
    if (!cJSON_IsString(p) || !cJSON_IsArray(truth) || !cJSON_IsArray(probs) || isnan(loss))
        return sn_error("%s:%d: a prediction needs 'path', 'truth', 'probs' and 'loss'", path, line);
    if (cJSON_GetArraySize(probs) != C)
        return sn_error("%s:%d: %d probabilities, but the run has %d classes", path, line, cJSON_GetArraySize(probs), C);
    run_pred *np = realloc(r->preds, sizeof *np * (size_t)(r->n_preds + 1));
    if (!np) return sn_error("%s: out of memory", path);
    r->preds = np;
    run_pred *d = &np[r->n_preds];
    memset(d, 0, sizeof *d);
    d->hot = calloc((size_t)C, 1);
    d->probs = malloc(sizeof(float) * (size_t)C);
    d->path = strdup(p->valuestring);
    d->rel = strdup(cJSON_IsString(rel) ? rel->valuestring : p->valuestring);
    r->n_preds++; /* owned from here on, freed by run_free */
    if (!d->hot || !d->probs || !d->path || !d->rel) return sn_error("%s: out of memory", path);
    d->loss = loss;
    d->line = line;
    double item = num(o, "item");
    d->item = isfinite(item) ? (int)item : -1;
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, probs) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
            return sn_error("%s:%d: probability %d is not a number in [0, 1]", path, line, k);
        d->probs[k++] = (float)v->valuedouble;
    }
    int nt = 0;
    cJSON_ArrayForEach(v, truth) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < C) || v->valuedouble != (int)v->valuedouble)
            return sn_error("%s:%d: true class index out of range 0..%d", path, line, C - 1);
        d->hot[(int)v->valuedouble] = 1;
        nt++;
    }
    if (nt == 0 && !r->multi) return sn_error("%s:%d: no true class", path, line);
    return 0;
}

static int read_preds(run_log *r) {
    char path[4200];
    size_t len;
    int rc;
    char *text = run_file(r, "valid_predictions.jsonl", true,
                          "the run has not finished (no confusion matrices, precision/recall or top losses)", path, &len, &rc);
    if (!text) return rc;
    if (!r->run) {
        free(text);
        add_line(&r->missing, &r->n_missing,
                 "valid_predictions.jsonl: present but run.json is not, so its classes have no names; not used");
        return 0;
    }
    rc = each_line(r, path, text, len, pred_row);
    free(text);
    if (rc < 0) return -1;
    double nv = num(r->run, "valid_images");
    if (isfinite(nv) && (int)nv != r->n_preds)
        add_line(&r->warnings, &r->n_warnings, "%s: %d predictions, but run.json says %d validation images", path,
                 r->n_preds, (int)nv);
    if (r->n_preds == 0)
        add_line(&r->missing, &r->n_missing, "valid_predictions.jsonl: empty (no validation images)");
    return 0;
}

run_log *run_open(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        sn_error("%s: no such run directory (%s)", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        sn_error("%s: not a directory (give the --run-dir of a training run)", dir);
        return NULL;
    }
    run_log *r = calloc(1, sizeof *r);
    if (!r) {
        sn_error("out of memory");
        return NULL;
    }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->threshold = 0.2;
    r->temperature = 1;
    r->epoch_rows = cJSON_CreateArray();
    if (!r->epoch_rows || read_history(r) < 0 || read_run(r) < 0 || read_preds(r) < 0) {
        run_free(r);
        return NULL;
    }
    return r;
}

void run_free(run_log *r) {
    if (!r) return;
    free(r->batches);
    free(r->epochs);
    free(r->seen_iter);
    cJSON_Delete(r->epoch_rows);
    cJSON_Delete(r->lr_find);
    cJSON_Delete(r->run);
    free(r->classes);
    for (int i = 0; i < r->n_preds; i++) {
        free(r->preds[i].path);
        free(r->preds[i].rel);
        free(r->preds[i].hot);
        free(r->preds[i].probs);
    }
    free(r->preds);
    for (int i = 0; i < r->n_missing; i++) free(r->missing[i]);
    for (int i = 0; i < r->n_warnings; i++) free(r->warnings[i]);
    free(r->missing);
    free(r->warnings);
    free(r);
}
