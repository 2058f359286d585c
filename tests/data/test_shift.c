/* test_shift.c - the shifted stress version of validation photos (data/shift.h) on 24 Style photos:
 *   - deterministic: the same images twice, with 1 or 2 threads; another seed gives others;
 *   - the stress images differ from the plain ones (every one of them), are square at the
 *     source's short side, and keep the labels, paths and classes;
 *   - the products are cut out: the border of most stress images is no longer the catalogue's
 *     near-white background. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/shift.h"

static dataset *style;
static int idx[24];

static void free_style(void) { ds_free(style); }

static bool setup(void) {
    if (style) return true;
    atexit(free_style);
    style = ds_open(&(ds_options){.root = shared_path("data/style")});
    if (!check(style && ds_decode(style, &(ds_decode_opts){.max_side = 80}) == 0, "Style set decoded at 80 px: %s",
               style ? "" : sn_last_error()))
        return false;
    for (int k = 0; k < 24; k++) idx[k] = k * 37;
    return true;
}

/* whether every image of a and b is byte-equal */
static bool same_images(const dataset *a, const dataset *b) {
    for (int k = 0; k < a->n_items; k++) {
        const image *x = &a->items[k].cache, *y = &b->items[k].cache;
        if (x->w != y->w || x->h != y->h || memcmp(x->rgb, y->rgb, (size_t)x->w * x->h * 3)) return false;
    }
    return a->n_items == b->n_items;
}

static void deterministic(void) {
    if (!setup()) return;
    omp_set_num_threads(2);
    dataset *a = shift_dataset(style, idx, 24, SHIFT_SEED), *b = shift_dataset(style, idx, 24, SHIFT_SEED);
    omp_set_num_threads(1);
    dataset *c = shift_dataset(style, idx, 24, SHIFT_SEED), *d = shift_dataset(style, idx, 24, SHIFT_SEED + 1);
    omp_set_num_threads(2);
    if (check(a && b && c && d, "stress sets built: %s", a && b && c && d ? "" : sn_last_error())) {
        check(same_images(a, b), "the same stress images twice");
        check(same_images(a, c), "the same with 1 thread as with 2");
        check(!same_images(a, d), "another seed: other images");
    }
    ds_free(a);
    ds_free(b);
    ds_free(c);
    ds_free(d);
}

static void differs_keeps_labels(void) {
    if (!setup()) return;
    dataset *s = shift_dataset(style, idx, 24, SHIFT_SEED);
    if (!check(s != NULL, "stress set built")) return;
    int differ = 0, square = 0, labels = 0, cut = 0;
    for (int k = 0; k < 24; k++) {
        const image *p = &style->items[idx[k]].cache, *q = &s->items[k].cache;
        const int side = p->w < p->h ? p->w : p->h;
        square += q->w == side && q->h == side;
        double diff = 0; /* against the plain image's central square */
        const int ox = (p->w - side) / 2, oy = (p->h - side) / 2;
        for (int y = 0; q->w == side && y < side; y++)
            for (int x = 0; x < side * 3; x++)
                diff += abs(q->rgb[(size_t)y * side * 3 + x] - p->rgb[((size_t)(y + oy) * p->w + ox) * 3 + x]);
        differ += diff / (side * side * 3.0) > 10;
        labels += !memcmp(ds_hot(s, k), ds_hot(style, idx[k]), (size_t)style->n_classes) &&
                  !strcmp(s->items[k].path, style->items[idx[k]].path);
        int light = 0; /* border pixels that are near-white like the catalogue's backgrounds */
        for (int x = 0; x < side; x++)
            for (int e = 0; e < 2; e++) {
                const uint8_t *px = q->rgb + ((size_t)(e ? side - 1 : 0) * side + x) * 3;
                light += px[0] > 235 && px[1] > 235 && px[2] > 235;
            }
        cut += light < side / 2;
    }
    check(differ == 24, "every stress image differs from its plain photo (mean difference > 10 of 255): %d", differ);
    check(square == 24, "square at the source's short side: %d", square);
    check(labels == 24 && s->n_classes == style->n_classes && !strcmp(s->classes[3], style->classes[3]),
          "labels, paths and classes kept: %d", labels);
    check(cut >= 20, "the catalogue background is replaced in at least 20 of 24 (%d)", cut);
    ds_free(s);
}

static const test_case cases[] = {
    {"deterministic", deterministic},
    {"differs_keeps_labels", differs_keeps_labels},
};
TEST_MAIN(cases)
