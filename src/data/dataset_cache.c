/* dataset_cache.c - decoding every image once into the in-memory cache (ds_decode) and an item's
 * pixels from the cache or the disk (ds_image).  See dataset.h. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/dataset_build.h"

/* resizes im in place so that its short side is at most max_side (<= 0: no limit) */
static int shrink(image *im, int max_side) {
    int s = im->w < im->h ? im->w : im->h;
    if (max_side <= 0 || s <= max_side) return 0;
    int w = im->w == s ? max_side : (int)lround((double)im->w * max_side / s);
    int h = im->h == s ? max_side : (int)lround((double)im->h * max_side / s);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    image small;
    if (image_resize(im, w, h, &small) < 0) return -1;
    image_free(im);
    *im = small;
    return 0;
}

int ds_image(const dataset *ds, int i, image *out, bool *owned) {
    const ds_item *it = &ds->items[i];
    if (it->cache.rgb) {
        *out = it->cache;
        *owned = false;
        return 0;
    }
    *owned = true;
    if (image_load(it->path, out) < 0) return -1;
    if (shrink(out, ds->max_side) < 0) {
        image_free(out);
        return sn_error_prefix("%s", it->path);
    }
    return 0;
}

typedef struct {
    dataset *ds;
    atomic_int next;
    atomic_size_t bytes;
    size_t budget;
    char **err; /* per item: message when decoding failed */
    atomic_int oom;
} decode_job;

/* decodes items claimed one at a time; keeps the pixels while the budget allows */
static void *decode_worker(void *arg) {
    decode_job *j = arg;
    dataset *ds = j->ds;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= ds->n_items) break;
        ds_item *it = &ds->items[i];
        image im;
        if (image_load(it->path, &im) < 0 || shrink(&im, ds->max_side) < 0) {
            if (!(j->err[i] = ds_strdup(sn_last_error()))) atomic_store(&j->oom, 1);
            continue;
        }
        size_t sz = (size_t)im.w * im.h * 3;
        size_t before = atomic_fetch_add(&j->bytes, sz);
        if (before + sz > j->budget) {
            atomic_fetch_sub(&j->bytes, sz);
            image_free(&im); /* over the budget: this one is decoded from disk when needed */
        } else {
            it->cache = im;
        }
    }
    return NULL;
}

/* the items that failed (err[i] set), in item order: the error (strict) or problems, counted */
static int report_bad(dataset *ds, char **err, bool strict) {
    for (int i = 0; i < ds->n_items; i++) {
        if (!err[i]) continue;
        if (strict) return sn_error("%s", err[i]);
        char msg[1200];
        snprintf(msg, sizeof msg, "%s; image skipped", err[i]);
        char **p = realloc(ds->problems, sizeof(char *) * (size_t)(ds->n_problems + 1));
        if (p) ds->problems = p;
        if (!p || !(p[ds->n_problems] = ds_strdup(msg))) return sn_error("out of memory");
        ds->n_problems++;
        ds->n_skipped++;
    }
    return 0;
}

/* drops the failed items (err[i] set), keeping the others' order and targets */
static void drop_bad(dataset *ds, char **err) {
    int keep = 0;
    for (int i = 0; i < ds->n_items; i++) {
        if (err[i]) {
            free(ds->items[i].path);
            free(ds->items[i].rel);
            continue;
        }
        if (keep != i) {
            ds->items[keep] = ds->items[i];
            memmove(ds->hot + (size_t)keep * ds->n_classes, ds->hot + (size_t)i * ds->n_classes,
                    (size_t)ds->n_classes);
        }
        keep++;
    }
    ds->n_items = keep;
}

int ds_decode(dataset *ds, const ds_decode_opts *o) {
    ds_decode_opts d = o ? *o : (ds_decode_opts){0};
    if (!d.budget_bytes) d.budget_bytes = (size_t)2 << 30;
    if (d.max_side <= 0) d.max_side = 256;
    if (d.n_threads <= 0) d.n_threads = 2;
    if (d.n_threads > 64) d.n_threads = 64;
    for (int i = 0; i < ds->n_items; i++) image_free(&ds->items[i].cache);
    ds->max_side = d.max_side;
    decode_job j = {.ds = ds, .budget = d.budget_bytes};
    atomic_init(&j.next, 0);
    atomic_init(&j.bytes, 0);
    atomic_init(&j.oom, 0);
    j.err = calloc((size_t)(ds->n_items ? ds->n_items : 1), sizeof(char *));
    if (!j.err) return sn_error("out of memory");
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < d.n_threads; t++)
        if (pthread_create(&th[started], NULL, decode_worker, &j) == 0) started++;
    decode_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    const int n0 = ds->n_items;
    int r = atomic_load(&j.oom) ? sn_error("out of memory") : report_bad(ds, j.err, d.strict);
    if (r == 0) {
        drop_bad(ds, j.err);
        if (ds->n_items == 0) r = sn_error("%s: no image could be decoded", ds->root);
    } else {
        for (int i = 0; i < n0; i++) image_free(&ds->items[i].cache);
    }
    for (int i = 0; i < n0; i++) free(j.err[i]);
    free(j.err);
    ds->cache_bytes = 0;
    ds->n_cached = 0;
    for (int i = 0; i < ds->n_items; i++)
        if (ds->items[i].cache.rgb) {
            ds->cache_bytes += (size_t)ds->items[i].cache.w * ds->items[i].cache.h * 3;
            ds->n_cached++;
        }
    return r;
}
