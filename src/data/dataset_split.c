/* dataset_split.c - the seeded train/validation split, stratified where the classes allow; K folds; a
 * split of every item to one side; a separate validation set appended.  See dataset.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"

enum { STREAM_SPLIT = 0x5917 };

typedef struct {
    const dataset *ds;
    uint64_t seed;
} split_ctx;

static uint64_t split_key(const split_ctx *c, int i) { return rng_u64(c->seed, STREAM_SPLIT, (uint64_t)i); }

/* item indices by the seeded random key (ties by index) */
static int cmp_random(const void *a, const void *b, void *ctx) {
    int i = *(const int *)a, j = *(const int *)b;
    uint64_t ki = split_key(ctx, i), kj = split_key(ctx, j);
    return ki < kj ? -1 : ki > kj ? 1 : i - j;
}

/* item indices by target row (the stratum), then by the seeded random key */
static int cmp_stratum(const void *a, const void *b, void *ctx) {
    int i = *(const int *)a, j = *(const int *)b;
    const dataset *ds = ((const split_ctx *)ctx)->ds;
    int c = memcmp(ds_hot(ds, i), ds_hot(ds, j), (size_t)ds->n_classes);
    return c ? c : cmp_random(a, b, ctx);
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

typedef struct {
    int start, n, take; /* the stratum's items are order[start .. start + n); take go to validation */
    double frac;        /* the remainder of its proportional share */
    uint64_t tie;       /* seeded tie-break among equal remainders */
} stratum;

/* largest remainder first, then by the seeded tie-break */
static int cmp_frac(const void *a, const void *b) {
    const stratum *x = a, *y = b;
    if (x->frac != y->frac) return x->frac > y->frac ? -1 : 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie ? 1 : x->start - y->start;
}

/* V of the n items to validation proportionally from every stratum (items with the same
 * targets) by largest remainders, at least one of each stratum left in training.  order[n]: the
 * items sorted by stratum.  Returns 1 when done, 0 when most items are alone in their stratum
 * (stratifying is pointless; nothing marked), -1 out of memory. */
static int split_strata(const dataset *ds, uint64_t seed, int V, const int *order, char *is_valid) {
    const int n = ds->n_items;
    stratum *st = malloc(sizeof(stratum) * (size_t)(n ? n : 1));
    if (!st) return sn_error("out of memory");
    int ns = 0, in_singletons = 0;
    for (int i = 0; i < n;) {
        int k = i + 1;
        while (k < n && !memcmp(ds_hot(ds, order[i]), ds_hot(ds, order[k]), (size_t)ds->n_classes)) k++;
        st[ns++] = (stratum){.start = i, .n = k - i};
        if (k - i == 1) in_singletons++;
        i = k;
    }
    if (in_singletons * 2 > n) { /* "where classes allow": not when most items are alone */
        free(st);
        return 0;
    }
    int given = 0;
    for (int s = 0; s < ns; s++) {
        double q = (double)st[s].n * V / n;
        int base = (int)floor(q);
        if (base > st[s].n - 1) base = st[s].n - 1;
        st[s].take = base;
        st[s].frac = q - base;
        st[s].tie = rng_u64(seed, STREAM_SPLIT + 1, (uint64_t)order[st[s].start]);
        given += base;
    }
    qsort(st, (size_t)ns, sizeof(stratum), cmp_frac);
    for (int pass = 0; pass < 2 && given < V; pass++)
        for (int s = 0; s < ns && given < V; s++)
            if (st[s].take < st[s].n - 1 && (pass == 1 || st[s].frac > 0)) {
                st[s].take++;
                given++;
            }
    for (int s = 0; s < ns; s++)
        for (int k = 0; k < st[s].take; k++) is_valid[order[st[s].start + k]] = 1;
    free(st);
    return 1;
}

/* marks the validation items of a seeded split (no split given by the data) */
static int split_seeded(const dataset *ds, uint64_t seed, float valid_pct, bool stratify, char *is_valid,
                        bool *stratified) {
    if (!(valid_pct >= 0 && valid_pct < 1))
        return sn_error("validation fraction %g is outside [0, 1)", (double)valid_pct);
    const int n = ds->n_items;
    int V = (int)lround((double)n * valid_pct);
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order) return sn_error("out of memory");
    split_ctx ctx = {ds, seed};
    for (int i = 0; i < n; i++) order[i] = i;
    int done = 0;
    if (stratify && V > 0) {
        qsort_r(order, (size_t)n, sizeof(int), cmp_stratum, &ctx);
        done = split_strata(ds, seed, V, order, is_valid);
        *stratified = done == 1;
    }
    if (done == 0) {
        qsort_r(order, (size_t)n, sizeof(int), cmp_random, &ctx);
        for (int k = 0; k < V; k++) is_valid[order[k]] = 1;
    }
    free(order);
    return done < 0 ? -1 : 0;
}

/* an empty split with room for the n items on either side */
static int split_alloc(int n, ds_split *out) {
    memset(out, 0, sizeof *out);
    out->train = malloc(sizeof(int) * (size_t)(n ? n : 1));
    out->valid = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (out->train && out->valid) return 0;
    ds_split_free(out);
    return sn_error("out of memory");
}

int ds_make_split(const dataset *ds, uint64_t seed, float valid_pct, bool stratify, ds_split *out) {
    int n = ds->n_items;
    if (split_alloc(n, out) < 0) return -1;
    char *is_valid = calloc((size_t)(n ? n : 1), 1);
    int r = 0;
    if (!is_valid) r = sn_error("out of memory");
    else if (ds->fixed_split)
        for (int i = 0; i < n; i++) is_valid[i] = ds->items[i].valid == 1;
    else r = split_seeded(ds, seed, valid_pct, stratify, is_valid, &out->stratified);
    if (r == 0) {
        for (int i = 0; i < n; i++) {
            if (is_valid[i]) out->valid[out->n_valid++] = i;
            else out->train[out->n_train++] = i;
        }
        qsort(out->train, (size_t)out->n_train, sizeof(int), cmp_int);
        qsort(out->valid, (size_t)out->n_valid, sizeof(int), cmp_int);
    }
    free(is_valid);
    if (r < 0) ds_split_free(out);
    return r;
}

void ds_split_free(ds_split *s) {
    free(s->train);
    free(s->valid);
    memset(s, 0, sizeof *s);
}

int ds_split_all(const dataset *ds, bool valid, ds_split *out) {
    const int n = ds->n_items;
    if (split_alloc(n, out) < 0) return -1;
    for (int i = 0; i < n; i++) (valid ? out->valid : out->train)[i] = i;
    *(valid ? &out->n_valid : &out->n_train) = n;
    return 0;
}

/* whether a and b have the same classes in the same order */
static bool same_classes(const dataset *a, const dataset *b) {
    if (a->kind != b->kind || a->n_classes != b->n_classes) return false;
    for (int c = 0; c < a->n_classes; c++)
        if (strcmp(a->classes[c], b->classes[c])) return false;
    return true;
}

int ds_append_valid(dataset *ds, dataset *valid) {
    if (!same_classes(ds, valid))
        return sn_error("%s: its classes are not those of %s (%d and %d classes)", valid->root, ds->root,
                        valid->n_classes, ds->n_classes);
    const int n = ds->n_items, nv = valid->n_items, C = ds->n_classes;
    ds_item *items = realloc(ds->items, sizeof(ds_item) * (size_t)(n + nv));
    if (items) ds->items = items;
    uint8_t *hot = items ? realloc(ds->hot, (size_t)(n + nv) * C) : NULL;
    if (hot) ds->hot = hot;
    char **pr = hot ? realloc(ds->problems, sizeof(char *) * (size_t)(ds->n_problems + valid->n_problems + 1)) : NULL;
    if (!pr) return sn_error("out of memory");
    ds->problems = pr;
    for (int i = 0; i < n; i++) ds->items[i].valid = 0;
    for (int k = 0; k < nv; k++) { /* moved over; shown by their full path */
        ds_item *it = &ds->items[n + k];
        *it = valid->items[k];
        free(it->rel);
        it->rel = NULL;
        it->valid = 1;
        memset(&valid->items[k], 0, sizeof valid->items[k]);
        memcpy(ds->hot + (size_t)(n + k) * C, ds_hot(valid, k), (size_t)C);
    }
    ds->n_items = n + nv;
    valid->n_items = 0;
    for (int p = 0; p < valid->n_problems; p++) ds->problems[ds->n_problems++] = valid->problems[p];
    valid->n_problems = 0;
    ds->n_skipped += valid->n_skipped;
    ds->fixed_split = true;
    for (int k = n; k < n + nv; k++)
        if (!(ds->items[k].rel = strdup(ds->items[k].path))) return sn_error("out of memory");
    return 0;
}

int ds_make_folds(const dataset *ds, uint64_t seed, int k, int *fold_of) {
    const int n = ds->n_items;
    if (k < 2 || k > n) return sn_error("%d folds of %d items: between 2 and the number of items", k, n);
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order) return sn_error("out of memory");
    split_ctx ctx = {ds, seed};
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof(int), cmp_stratum, &ctx);
    for (int j = 0; j < n; j++) fold_of[order[j]] = j % k; /* dealt in turn: every stratum spread over the folds */
    free(order);
    return 0;
}

int ds_fold_split(const dataset *ds, const int *fold_of, int fold, ds_split *out) {
    const int n = ds->n_items;
    if (split_alloc(n, out) < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (fold_of[i] == fold) out->valid[out->n_valid++] = i;
        else out->train[out->n_train++] = i;
    }
    out->stratified = true;
    return 0;
}
