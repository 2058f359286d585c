/* test_loader.c - batches are identical for any thread count and on every run; epochs reshuffle
 * and re-augment; labels follow the images; progressive resizing; errors; prefetch speed.  The
 * cases share the decoded Style set (style_set(): decoded by the first case that asks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* hash of `epochs` epochs of batches (images, labels, targets) */
static uint64_t run_(const dataset *ds, const int *idx, int n, loader_opts o, int epochs, int *batches, int *images,
                     bool view) {
    loader *L = loader_create(ds, idx, n, &o);
    if (!L) return 0;
    float *x = malloc(sizeof(float) * (size_t)o.batch * o.size * o.size * 3);
    float *t = malloc(sizeof(float) * (size_t)o.batch * ds->n_classes);
    int *y = malloc(sizeof(int) * (size_t)o.batch);
    uint64_t h = 0xcbf29ce484222325ull;
    *batches = *images = 0;
    for (int e = 0; e < epochs; e++) {
        int k;
        for (;;) {
            if (view) {
                const float *vx, *vt;
                const int *vy;
                k = loader_next_view(L, &vx, &vy, &vt);
                if (k > 0) {
                    memcpy(x, vx, sizeof(float) * (size_t)k * o.size * o.size * 3);
                    memcpy(y, vy, sizeof(int) * (size_t)k);
                    memcpy(t, vt, sizeof(float) * (size_t)k * ds->n_classes);
                }
            } else {
                k = loader_next(L, x, y, t);
            }
            if (k <= 0) break;
            h = fnv(x, sizeof(float) * (size_t)k * o.size * o.size * 3, h);
            h = fnv(y, sizeof(int) * (size_t)k, h);
            h = fnv(t, sizeof(float) * (size_t)k * ds->n_classes, h);
            (*batches)++;
            *images += k;
        }
        if (k < 0) {
            h = 0;
            break;
        }
        h = fnv("|", 1, h);
    }
    free(x);
    free(t);
    free(y);
    loader_free(L);
    return h;
}

static uint64_t run(const dataset *ds, const int *idx, int n, loader_opts o, int epochs, int *batches, int *images) {
    return run_(ds, idx, n, o, epochs, batches, images, false);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static dataset *g_ds;
static ds_split g_sp;

/* the Style set (multi-label), decoded into the cache, and its seed-42 split; NULL on failure */
static const dataset *style_set(void) {
    static bool tried;
    if (tried) return g_ds;
    tried = true;
    char root[4096];
    snprintf(root, sizeof root, "%s", shared_path("data/style"));
    dataset *ds = ds_open(&(ds_options){.root = root, .task = "multi"});
    if (!check(ds && ds_decode(ds, NULL) == 0, "Style set decoded into the cache (%s)", ds ? "ok" : sn_last_error())) {
        ds_free(ds);
        return NULL;
    }
    if (ds_make_split(ds, 42, 0.2f, true, &g_sp) < 0) {
        check(false, "split: %s", sn_last_error());
        ds_free(ds);
        return NULL;
    }
    g_ds = ds;
    return g_ds;
}

/* 150 items of the training split, 64 px, batch 32 (last batch short), seed 7 */
static loader_opts small_opts(void) {
    loader_opts o = loader_defaults();
    o.size = 64;
    o.batch = 32;
    o.seed = 7;
    o.drop_last = false;
    return o;
}

static void batches_threads(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = small_opts();
    int nb = 0, ni = 0;
    uint64_t h[4];
    for (int th = 0; th < 4; th++) {
        o.n_threads = th;
        h[th] = run(ds, g_sp.train, 150, o, 2, &nb, &ni);
    }
    check(h[0] && h[0] == h[1] && h[1] == h[2] && h[2] == h[3],
          "2 epochs of augmented batches identical with 0, 1, 2 and 3 background threads (%016llx)",
          (unsigned long long)h[0]);
    check(nb == 10 && ni == 300, "150 images, batch 32, no drop_last: 5 batches (last of 22) per epoch (%d, %d)", nb, ni);
}

static void batches_repeat(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = small_opts();
    int nb, ni;
    o.n_threads = 2;
    uint64_t h = run(ds, g_sp.train, 150, o, 2, &nb, &ni);
    check(h && run(ds, g_sp.train, 150, o, 2, &nb, &ni) == h, "the same on a second run");
    check(run_(ds, g_sp.train, 150, o, 2, &nb, &ni, true) == h, "the same through loader_next_view (2 threads)");
    o.n_threads = 0;
    check(run_(ds, g_sp.train, 150, o, 2, &nb, &ni, true) == h, "the same through loader_next_view (no thread)");
}

static void batches_drop_last_seed(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = small_opts();
    int nb, ni;
    o.n_threads = 2;
    uint64_t h = run(ds, g_sp.train, 150, o, 2, &nb, &ni);
    o.drop_last = true;
    run(ds, g_sp.train, 150, o, 1, &nb, &ni);
    check(nb == 4 && ni == 128, "drop_last: 4 full batches");
    o.drop_last = false;
    o.seed = 8;
    check(run(ds, g_sp.train, 150, o, 2, &nb, &ni) != h, "another seed: other batches");
}

/* each target row is one brand + one product, and the multiset of targets is the same */
static bool same_targets(const float *t0, const float *t1, const int *y0) {
    double s0 = 0, s1 = 0;
    bool one_each = true;
    for (int i = 0; i < 150; i++) {
        int b = 0, p = 0;
        for (int c = 0; c < 17; c++) {
            s0 += t0[i * 17 + c] * (c + 1) * (c + 1);
            s1 += t1[i * 17 + c] * (c + 1) * (c + 1);
            *(c < 7 ? &b : &p) += t0[i * 17 + c] > 0.5f;
        }
        one_each &= b == 1 && p == 1 && y0[i] == -1;
    }
    return one_each && s0 == s1;
}

/* epochs differ; labels follow their images; set_epoch restarts reproducibly; progressive
 * resizing from the next epoch */
static void epochs_and_resize(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    const int n = 150;
    loader_opts o = small_opts();
    o.n_threads = 2;
    o.batch = 150;
    loader *L = loader_create(ds, g_sp.train, n, &o);
    float *x0 = malloc(sizeof(float) * 150 * 128 * 128 * 3), *x1 = malloc(sizeof(float) * 150 * 128 * 128 * 3);
    float *t0 = malloc(sizeof(float) * 150 * 17), *t1 = malloc(sizeof(float) * 150 * 17);
    int y0[150];
    int k0 = loader_next(L, x0, y0, t0);
    check(k0 == 150 && loader_next(L, x1, NULL, NULL) == 0, "one batch, then 0 at the end of the epoch");
    check(loader_epoch(L) == 1, "then the loader is in epoch 1");
    check(loader_set_size(L, 64) == 0 && loader_set_epoch(L, 1) == 0, "set_size/set_epoch with nothing to change");
    int k1 = loader_next(L, x1, NULL, t1);
    {
        loader_opts o2 = o;
        o2.n_threads = 0;
        loader *L2 = loader_create(ds, g_sp.train, n, &o2);
        loader_set_epoch(L2, 1);
        float *x2 = malloc(sizeof(float) * 150 * 64 * 64 * 3);
        loader_next(L2, x2, NULL, NULL);
        check(!memcmp(x1, x2, sizeof(float) * 150 * 64 * 64 * 3), "epoch 1 equals a fresh loader's epoch 1");
        free(x2);
        loader_free(L2);
    }
    check(k1 == 150 && memcmp(t0, t1, sizeof(float) * 150 * 17) && memcmp(x0, x1, sizeof(float) * 150 * 64 * 64 * 3),
          "epoch 1: another order and other augmentations");
    check(same_targets(t0, t1, y0), "multi-hot targets: one brand and one product per image; same items, reordered");
    loader_set_epoch(L, 0);
    loader_next(L, x1, NULL, t1);
    check(!memcmp(x0, x1, sizeof(float) * 150 * 64 * 64 * 3) && !memcmp(t0, t1, sizeof(float) * 150 * 17),
          "loader_set_epoch(0) reproduces epoch 0");
    /* progressive resizing: 64 -> 128 from the next epoch */
    check(loader_set_size(L, 128) == 0 && loader_next(L, x1, NULL, NULL) == 150, "loader_set_size(128) restarts the "
          "epoch at 128x128");
    bool finite = true;
    for (size_t i = 0; i < (size_t)150 * 128 * 128 * 3; i++) finite &= isfinite(x1[i]);
    check(finite, "128x128 batch values are finite");
    loader_free(L);
    o.n_threads = 0;
    o.size = 128;
    o.batch = 150;
    L = loader_create(ds, g_sp.train, n, &o);
    loader_set_epoch(L, 1); /* the set_size above came after epoch 0's batch: it restarted epoch 1 */
    loader_next(L, x0, NULL, NULL);
    check(!memcmp(x0, x1, sizeof(float) * 150 * 128 * 128 * 3), "the same batch as a loader created at 128");
    loader_free(L);
    free(x0);
    free(x1);
    free(t0);
    free(t1);
}

/* validation loader: no augmentation, order kept */
static void validation(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = small_opts();
    o.n_threads = 0;
    o.augment = false;
    o.shuffle = false;
    o.batch = 4;
    loader *L = loader_create(ds, g_sp.valid, g_sp.n_valid, &o);
    float *x0 = malloc(sizeof(float) * 4 * 64 * 64 * 3), t0[4 * 17];
    int yv[4];
    loader_next(L, x0, yv, t0);
    bool inorder = true;
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 17; c++) inorder &= t0[i * 17 + c] == ds_hot(ds, g_sp.valid[i])[c];
    float ref[64 * 64 * 3];
    aug_center(&ds->items[g_sp.valid[2]].cache, 64, o.mean, o.std, ref);
    check(inorder && !memcmp(ref, x0 + 2 * 64 * 64 * 3, sizeof ref), "validation: given order, centre crop only");
    loader_free(L);
    free(x0);
}

static void too_few(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader *L = loader_create(ds, g_sp.train, 3, &(loader_opts){.size = 64, .batch = 8, .drop_last = true});
    check(!L && strstr(sn_last_error(), "no batch"), "fewer images than one batch with drop_last: %s", sn_last_error());
    loader_free(L);
}

/* prefetching: a consumer slower than one worker never waits.  The "training step" is made 1.5x
 * the time one thread takes to prepare a batch, measured here (so it holds under ASan or a
 * loaded machine); two workers then keep ahead with room to spare. */
static void prefetch(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = loader_defaults();
    o.size = 128;
    o.batch = 32;
    o.n_threads = 0;
    float *x0 = malloc(sizeof(float) * 32 * 128 * 128 * 3);
    loader *L = loader_create(ds, g_sp.train, g_sp.n_train, &o);
    double tb = now();
    for (int b = 0; b < 3; b++) loader_next(L, x0, NULL, NULL);
    tb = (now() - tb) / 3;
    loader_free(L);
    o.n_threads = 2;
    L = loader_create(ds, g_sp.train, g_sp.n_train, &o);
    loader_next(L, x0, NULL, NULL); /* warm up */
    double wait = 0, copy = 0, t_all = now();
    const float *vx;
    bool same = true;
    for (int b = 0; b < 12; b++) {
        usleep((useconds_t)(1.5e6 * tb));
        double t = now();
        int k = b % 2 ? loader_next(L, x0, NULL, NULL) : loader_next_view(L, &vx, NULL, NULL);
        *(b % 2 ? &copy : &wait) += now() - t;
        same &= k == 32;
    }
    t_all = now() - t_all;
    note("prefetch: one thread prepares a batch of 32 at 128x128 in %.1f ms; with a %.1f ms step the consumer waited "
         "%.2f ms in 6 loader_next_view calls, %.2f ms in 6 loader_next calls (copying 6.3 MB each)",
         tb * 1e3, 1.5 * tb * 1e3, wait * 1e3, copy * 1e3);
    check(same && wait < 0.1 * t_all / 2, "with prefetching the consumer does not wait (%.1f%% of the time)",
          100 * wait / (t_all / 2));
    loader_free(L);
    free(x0);
}

/* throughput of one worker, from the cache (a note, no check) */
static void throughput(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = loader_defaults();
    o.size = 128;
    o.batch = 32;
    o.n_threads = 0;
    float *x0 = malloc(sizeof(float) * 32 * 128 * 128 * 3);
    loader *L = loader_create(ds, g_sp.train, g_sp.n_train, &o);
    double t = now();
    int imgs = 0, k;
    while ((k = loader_next(L, x0, NULL, NULL)) > 0) imgs += k;
    double ips = imgs / (now() - t);
    note("augmented 128x128 images per second on one core (loader, from the cache): %.0f", ips);
    loader_free(L);
    free(x0);
}

/* an image that went missing after decoding (not cached): -1 naming it */
static void missing_image(void) {
    char tmp[] = "/tmp/stylenet_ld_XXXXXX", p[512];
    if (!check(mkdtemp(tmp) != NULL, "temporary folder")) return;
    const char *cls[2] = {"a", "b"};
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/%s", tmp, cls[c]);
        mkdir(p, 0755);
        for (int i = 0; i < 3; i++) {
            image im = {.w = 8, .h = 8, .rgb = calloc(8 * 8 * 3, 1)};
            snprintf(p, sizeof p, "%s/%s/%d.png", tmp, cls[c], i);
            image_save_png(&im, p);
            image_free(&im);
        }
    }
    dataset *d2 = ds_open(&(ds_options){.root = tmp});
    if (check(d2 && ds_decode(d2, &(ds_decode_opts){.budget_bytes = 1}) == 0, "a set of two classes, not cached (%s)",
              d2 ? "ok" : sn_last_error())) {
        snprintf(p, sizeof p, "%s/a/1.png", tmp);
        unlink(p);
        int all[3] = {0, 1, 2};
        loader_opts o = loader_defaults();
        o.size = 8;
        o.batch = 3;
        o.n_threads = 1;
        loader *L = loader_create(d2, all, 3, &o);
        float xx[3 * 8 * 8 * 3];
        int r = L ? loader_next(L, xx, NULL, NULL) : 0;
        check(r < 0 && strstr(sn_last_error(), "1.png"), "a missing image: loader_next fails naming it: %s",
              sn_last_error());
        loader_free(L);
    }
    ds_free(d2);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) note("could not remove %s", tmp);
}

/* the shares of 3 processes (loader_opts.shard of n_shards) of each batch of 32, side by side,
 * are the whole batch: images, labels and targets (the images decoded and augmented apart) */
static void shards(void) {
    const dataset *ds = style_set();
    if (!ds) return;
    loader_opts o = small_opts();
    o.drop_last = true;
    o.n_threads = 1;
    const size_t px = (size_t)o.size * o.size * 3, C = (size_t)ds->n_classes;
    float *x = malloc(sizeof(float) * 32 * px), *xs = malloc(sizeof(float) * 32 * px);
    float *t = malloc(sizeof(float) * 32 * C), *ts = malloc(sizeof(float) * 32 * C);
    int y[32], ys[32];
    loader *whole = loader_create(ds, g_sp.train, 150, &o);
    loader *part[3];
    for (int r = 0; r < 3; r++) {
        o.shard = r;
        o.n_shards = 3;
        part[r] = loader_create(ds, g_sp.train, 150, &o);
    }
    bool same = x && xs && t && ts && whole && part[0] && part[1] && part[2];
    int sizes[3] = {0, 0, 0}, batches = 0;
    for (int b = 0; same && loader_next(whole, x, y, t) == 32; b++, batches++) {
        int at = 0;
        for (int r = 0; r < 3; r++) {
            int n = loader_next(part[r], xs + at * px, ys + at, ts + at * C);
            sizes[r] = n;
            at += n > 0 ? n : 0;
        }
        same = at == 32 && !memcmp(x, xs, sizeof(float) * 32 * px) && !memcmp(y, ys, sizeof y) &&
               !memcmp(t, ts, sizeof(float) * 32 * C);
    }
    check(same && batches == 4 && sizes[0] == 10 && sizes[1] == 11 && sizes[2] == 11,
          "3 shares (%d, %d, %d images) of each of %d batches of 32 make the whole batch", sizes[0], sizes[1], sizes[2],
          batches);
    o.shard = 0;
    o.n_shards = 40;
    loader *bad = loader_create(ds, g_sp.train, 150, &o);
    check(!bad && strstr(sn_last_error(), "share 0 of 40"), "40 shares of a batch of 32 refused (%s)", sn_last_error());
    loader_free(bad);
    loader_free(whole);
    for (int r = 0; r < 3; r++) loader_free(part[r]);
    free(x); free(xs); free(t); free(ts);
}

static const test_case cases[] = {
    {"batches_threads", batches_threads},
    {"shards", shards},
    {"batches_repeat", batches_repeat},
    {"batches_drop_last_seed", batches_drop_last_seed},
    {"epochs_and_resize", epochs_and_resize},
    {"validation", validation},
    {"too_few", too_few},
    {"prefetch", prefetch},
    {"throughput", throughput},
    {"missing_image", missing_image},
};

int main(int argc, char **argv) {
    int r = test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
    ds_split_free(&g_sp);
    ds_free(g_ds);
    return r;
}
