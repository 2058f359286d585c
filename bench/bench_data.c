/* bench_data.c - data pipeline speed on the Style set: augmented images per second per core from the
 * in-memory cache (aug_warp alone, one thread), whole batches through the loader with 1 and 2
 * background threads, the matte of a photo, and the loader in the caller (one core) with each
 * shift augmentation alone at probability 1 and with the --shift-aug preset (after a warm-up
 * epoch that builds the mattes and decodes the background photos).
 *
 * Build and run: `make -C bench data` (after `make`), or build/bench/bench_data [DATA_DIR] [SIZE];
 * DATA_DIR defaults to $STYLENET_SHARED/data/style ($STYLENET_SHARED: ../shared if unset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/matte.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* one epoch of the loader with n_threads workers (0: in the caller): images/s */
static double loader_rate(const dataset *ds, const int *idx, const aug_opts *aug, int S, int n_threads, float *x) {
    loader_opts lo = loader_defaults();
    lo.size = S;
    lo.n_threads = n_threads;
    lo.aug = *aug;
    loader *L = loader_create(ds, idx, ds->n_items, &lo);
    if (!L) {
        fprintf(stderr, "bench_data: %s\n", sn_last_error());
        return 0;
    }
    int n, imgs = 0;
    while (loader_next(L, x, NULL, NULL) > 0) {} /* warm-up: mattes, background photos */
    double t = now();
    while ((n = loader_next(L, x, NULL, NULL)) > 0) imgs += n;
    double el = now() - t;
    loader_free(L);
    return imgs / el;
}

/* the matte of every photo once, then each shift augmentation alone and the preset */
static void shift_bench(const dataset *ds, const int *idx, int S, float *x) {
    matte_opts mo;
    matte_defaults(&mo);
    int found = 0;
    double t = now();
    for (int i = 0; i < ds->n_items; i++) {
        matte_map m;
        if (matte_map_build(&ds->items[i].cache, &mo, &m) == 0) found += m.ok;
        matte_map_free(&m);
    }
    printf("matte (flood fill + feathering + shadow map) of a cached photo: %.2f ms; %d of %d photos have one\n",
           (now() - t) * 1e3 / ds->n_items, found, ds->n_items);
    aug_opts base;
    aug_defaults(&base);
    printf("loader in the caller (one core), %dx%d, after a warm-up epoch:\n", S, S);
    printf("  %-34s %6.0f images/s\n", "fastai transforms only", loader_rate(ds, idx, &base, S, 0, x));
    static const char *names[] = {"--bg-p 1 (procedural only)", "--bg-p 1 (+ photos, 0.5)", "--bg-p 1 --shadow-p 1",
                                  "--rotate-full-p 1", "--rrc-p 1", "--persp-p 1", "--color-p 1", "--blur-p 1",
                                  "--jpeg-p 1", "--erase-p 1", "--cutmix-p 1", "--shift-aug"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++) {
        aug_opts o = base;
        switch (k) {
        case 0: o.bg_p = 1, o.bg_dirs = "none"; break;
        case 1: o.bg_p = 1; break;
        case 2: o.bg_p = 1, o.shadow_p = 1; break;
        case 3: o.rotate_full_p = 1; break;
        case 4: o.rrc_p = 1; break;
        case 5: o.persp_p = 1; break;
        case 6: o.color_p = 1; break;
        case 7: o.blur_p = 1; break;
        case 8: o.jpeg_p = 1; break;
        case 9: o.erase_p = 1; break;
        case 10: o.cutmix_p = 1; break;
        default: aug_shift_preset(&o); break;
        }
        printf("  %-34s %6.0f images/s\n", names[k], loader_rate(ds, idx, &o, S, 0, x));
    }
    aug_opts o = base;
    aug_shift_preset(&o);
    printf("loader, 2 background threads: %.0f images/s fastai transforms only, %.0f images/s with --shift-aug\n",
           loader_rate(ds, idx, &base, S, 2, x), loader_rate(ds, idx, &o, S, 2, x));
}

int main(int argc, char **argv) {
    char dir[4096];
    const char *shared = getenv("STYLENET_SHARED");
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else snprintf(dir, sizeof dir, "%s/data/style", shared && shared[0] ? shared : "../shared");
    int S = argc > 2 ? atoi(argv[2]) : 128;
    double t0 = now();
    dataset *ds = ds_open(&(ds_options){.root = dir, .task = "multi"});
    if (!ds || ds_decode(ds, &(ds_decode_opts){.n_threads = 2}) < 0) {
        fprintf(stderr, "bench_data: %s\n", sn_last_error());
        return 1;
    }
    printf("%s: %d images decoded into %.1f MB in %.2f s (2 threads)\n", dir, ds->n_items, ds->cache_bytes / 1e6,
           now() - t0);
    aug_opts o;
    aug_defaults(&o);
    float *x = malloc(sizeof(float) * 64 * S * S * 3);
    /* 1. the warp alone, one core */
    int reps = 0;
    double t = now(), el;
    do {
        for (int i = 0; i < ds->n_items; i++) {
            aug_params p;
            aug_draw(&o, 1, (uint64_t)reps, (uint64_t)i, &p);
            aug_warp(&ds->items[i].cache, &p, S, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, x);
        }
        reps++;
        el = now() - t;
    } while (el < 2.0);
    printf("augment %dx%d (rotate/zoom/flip/crop/lighting, one affine warp): %.0f images/s on one core\n", S, S,
           reps * ds->n_items / el);
    /* 2. validation transform */
    t = now();
    for (int i = 0; i < ds->n_items; i++) aug_center(&ds->items[i].cache, S, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, x);
    printf("validation %dx%d (antialiased resize + centre crop): %.0f images/s on one core\n", S, S,
           ds->n_items / (now() - t));
    /* 3. the loader, batches of 64, consumer doing nothing */
    int *idx = malloc(sizeof(int) * (size_t)ds->n_items);
    for (int i = 0; i < ds->n_items; i++) idx[i] = i;
    for (int th = 0; th <= 2; th++) {
        loader_opts lo = loader_defaults();
        lo.size = S;
        lo.n_threads = th;
        loader *L = loader_create(ds, idx, ds->n_items, &lo);
        int n, imgs = 0;
        t = now();
        for (int e = 0; e < 3; e++)
            while ((n = loader_next(L, x, NULL, NULL)) > 0) imgs += n;
        el = now() - t;
        printf("loader, %d background thread%s (%s): %.0f images/s\n", th, th == 1 ? "" : "s",
               th ? "prefetching" : "in the caller", imgs / el);
        loader_free(L);
    }
    shift_bench(ds, idx, S, x);
    free(idx);
    free(x);
    ds_free(ds);
    return 0;
}
