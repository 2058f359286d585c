/* data_report.c - class counts, tag combinations and the sample grid of a data set (see
 * data_report.h). */
#include "report/data_report.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/loader.h"
#include "io/image.h"

void report_class_counts(const dataset *ds, const ds_split *sp, int *train, int *valid) {
    const int K = ds->n_classes;
    memset(train, 0, sizeof(int) * (size_t)K);
    memset(valid, 0, sizeof(int) * (size_t)K);
    for (int k = 0; k < sp->n_train; k++)
        for (int cl = 0; cl < K; cl++) train[cl] += ds_hot(ds, sp->train[k])[cl];
    for (int k = 0; k < sp->n_valid; k++)
        for (int cl = 0; cl < K; cl++) valid[cl] += ds_hot(ds, sp->valid[k])[cl];
}

/* greedy word wrap of s into lines of at most width characters */
static int wrap(const char *s, int width, char lines[][64], int max_lines) {
    int n = 0;
    char cur[64] = "";
    while (*s && n < max_lines) {
        while (*s == ' ') s++;
        if (!*s) break;
        int wl = 0;
        while (s[wl] && s[wl] != ' ') wl++;
        int cl = (int)strlen(cur);
        if (cl && cl + 1 + wl <= width) {
            snprintf(cur + cl, sizeof cur - (size_t)cl, " %.*s", wl, s);
            s += wl;
        } else if (!cl) {
            int take = wl < width ? wl : width;
            snprintf(cur, sizeof cur, "%.*s", take, s);
            s += take;
        } else {
            snprintf(lines[n++], 64, "%s", cur);
            cur[0] = 0;
        }
    }
    if (cur[0] && n < max_lines) snprintf(lines[n++], 64, "%s", cur);
    return n;
}

int report_sample_grid(const dataset *ds, const ds_split *sp, const aug_opts *aug, int n, int S, uint64_t seed,
                       const char *path) {
    if (sp->n_train == 0) return sn_error("%s: no training images to show", path);
    if (n > sp->n_train) n = sp->n_train;
    loader_opts lo = loader_defaults();
    lo.size = S;
    lo.batch = n;
    lo.seed = seed;
    if (aug) lo.aug = *aug;
    lo.n_threads = 0;
    lo.drop_last = false;
    for (int c = 0; c < 3; c++) lo.mean[c] = 0, lo.std[c] = 1;
    loader *L = loader_create(ds, sp->train, sp->n_train, &lo);
    if (!L) return -1;
    float *x = malloc(sizeof(float) * (size_t)n * S * S * 3);
    float *t = malloc(sizeof(float) * (size_t)n * ds->n_classes);
    if (!x || !t) {
        free(x);
        free(t);
        loader_free(L);
        return sn_error("out of memory");
    }
    int got = loader_next(L, x, NULL, t);
    loader_free(L);
    if (got <= 0) {
        free(x);
        free(t);
        return got < 0 ? -1 : sn_error("%s: no batch", path);
    }
    const int pad = 4, width = (S - 2) / 6 < 63 ? (S - 2) / 6 : 63, max_lines = 4, line_h = 9;
    const int cols = (int)ceil(sqrt((double)got)), rows = (got + cols - 1) / cols;
    const int cell_w = S + pad, cell_h = S + max_lines * line_h + pad;
    image g = {.w = cols * cell_w + pad, .h = rows * cell_h + pad};
    g.rgb = malloc((size_t)g.w * g.h * 3);
    if (!g.rgb) {
        free(x);
        free(t);
        return sn_error("out of memory");
    }
    memset(g.rgb, 255, (size_t)g.w * g.h * 3);
    const uint8_t black[3] = {0, 0, 0};
    for (int k = 0; k < got; k++) {
        int X = pad + (k % cols) * cell_w, Y = pad + (k / cols) * cell_h;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++)
                for (int c = 0; c < 3; c++) {
                    float v = x[(((size_t)k * S + y) * S + xx) * 3 + c] * 255.0f + 0.5f;
                    g.rgb[((size_t)(Y + y) * g.w + X + xx) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
        char label[1024] = "";
        for (int c = 0; c < ds->n_classes; c++)
            if (t[(size_t)k * ds->n_classes + c] > 0) {
                size_t L0 = strlen(label);
                float v = t[(size_t)k * ds->n_classes + c];
                if (v > 0.999f) snprintf(label + L0, sizeof label - L0, "%s%s", L0 ? " + " : "", ds->classes[c]);
                else snprintf(label + L0, sizeof label - L0, "%s%s %.2f", L0 ? " + " : "", ds->classes[c], v);
            }
        char lines[4][64];
        int nl = wrap(label, width, lines, max_lines);
        for (int i = 0; i < nl; i++) image_draw_text(&g, X + 1, Y + S + 2 + i * line_h, lines[i], black, 1);
    }
    int r = image_save_png(&g, path);
    image_free(&g);
    free(x);
    free(t);
    return r;
}

/* qsort_r order of item indices: by their tags (as bytes), then by index */
static int by_tags(const void *a, const void *b, void *data) {
    const dataset *ds = data;
    int i = *(const int *)a, j = *(const int *)b;
    int c = memcmp(ds_hot(ds, i), ds_hot(ds, j), (size_t)ds->n_classes);
    return c ? c : i - j;
}

int report_tag_sets(const dataset *ds, int lim, int *n_sets) {
    int n = ds->n_items, rare = 0;
    *n_sets = 0;
    int *o = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!o) return -1;
    for (int i = 0; i < n; i++) o[i] = i;
    qsort_r(o, (size_t)n, sizeof(int), by_tags, (void *)ds);
    for (int i = 0; i < n;) {
        int k = i + 1;
        while (k < n && !memcmp(ds_hot(ds, o[i]), ds_hot(ds, o[k]), (size_t)ds->n_classes)) k++;
        (*n_sets)++;
        rare += k - i < lim;
        i = k;
    }
    free(o);
    return rare;
}
