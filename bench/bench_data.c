/* bench_data.c - data pipeline speed on the Style set: augmented images per second per core from the
 * in-memory cache (aug_warp alone, one thread), and whole batches through the loader with 1 and 2
 * background threads.
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

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
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
    free(idx);
    free(x);
    ds_free(ds);
    return 0;
}
