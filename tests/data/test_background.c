/* test_background.c - procedural backgrounds: deterministic per key, different across keys,
 * varied within an image; GIMP patterns and photos from a folder; bg_draw's choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/background.h"

static void deterministic(void) {
    const int w = 48, h = 32;
    uint8_t *a = malloc(w * h * 3), *b = malloc(w * h * 3), *c = malloc(w * h * 3);
    for (int f = 0; f < BG_FAMILIES; f++) {
        bg_procedural(f, 7, 123, w, h, a);
        bg_procedural(f, 7, 123, w, h, b);
        bg_procedural(f, 7, 124, w, h, c);
        check(memcmp(a, b, (size_t)w * h * 3) == 0, "%s: same key, same pixels", BG_FAMILY_NAMES[f]);
        check(memcmp(a, c, (size_t)w * h * 3) != 0, "%s: another key, other pixels", BG_FAMILY_NAMES[f]);
        bg_procedural(f, 8, 123, w, h, c);
        check(memcmp(a, c, (size_t)w * h * 3) != 0, "%s: another seed, other pixels", BG_FAMILY_NAMES[f]);
    }
    free(a);
    free(b);
    free(c);
}

/* every family but a (possibly flat) gradient varies across the image for most keys; dark
 * scenes are dark on average */
static void varied(void) {
    const int w = 64, h = 64;
    uint8_t *a = malloc(w * h * 3);
    for (int f = 0; f < BG_FAMILIES; f++) {
        int varied_keys = 0;
        double dark_mean = 0;
        for (int key = 0; key < 20; key++) {
            bg_procedural(f, 1, (uint64_t)key, w, h, a);
            int lo = 255, hi = 0;
            double s = 0;
            for (int i = 0; i < w * h * 3; i++) {
                lo = a[i] < lo ? a[i] : lo;
                hi = a[i] > hi ? a[i] : hi;
                s += a[i];
            }
            varied_keys += hi - lo > 20;
            dark_mean += s / (w * h * 3) / 20;
        }
        check(varied_keys >= 14, "%s: %d of 20 keys give a textured image", BG_FAMILY_NAMES[f], varied_keys);
        if (f == BG_DARK) check(dark_mean < 90, "dark scenes have a mean value %.0f < 90", dark_mean);
    }
    free(a);
}

/* a folder with a GIMP pattern, a PNG photo, a broken PNG and a text file */
static void library(void) {
    char dir[] = "/tmp/stylenet_bg_XXXXXX";
    if (!check(mkdtemp(dir) != NULL, "temporary folder")) return;
    char p[256];
    snprintf(p, sizeof p, "%s/sub", dir);
    char log[256];
    check(run_capture(log, sizeof log, "mkdir -p %s", p) == 0, "sub folder");
    /* 3x2 RGB pattern named "t" */
    uint8_t pat[24 + 2 + 18] = {0, 0, 0, 26, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3, 'G', 'P', 'A', 'T', 't', 0};
    for (int i = 0; i < 18; i++) pat[26 + i] = (uint8_t)(i * 14);
    snprintf(p, sizeof p, "%s/sub/a.pat", dir);
    FILE *f = fopen(p, "wb");
    fwrite(pat, 1, sizeof pat, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/bad.png", dir);
    f = fopen(p, "wb");
    fputs("not a png", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    f = fopen(p, "wb");
    fputs("ignored", f);
    fclose(f);
    image im = {.w = 40, .h = 30, .rgb = malloc(40 * 30 * 3)};
    for (int i = 0; i < 40 * 30 * 3; i++) im.rgb[i] = (uint8_t)(i % 251);
    snprintf(p, sizeof p, "%s/photo.png", dir);
    check(image_save_png(&im, p) == 0, "write a photo");
    bg_library *lib = bg_library_load(dir, 20, false);
    if (check(lib != NULL, "load the folder (%s)", lib ? "ok" : sn_last_error())) {
        /* sorted: bad.png, photo.png, then sub/a.pat; notes.txt is not a background */
        check(bg_library_size(lib) == 3 && bg_library_failed(lib, NULL, 0) == 0, "3 files listed, nothing decoded yet");
        const image *bad = bg_library_image(lib, 0), *ph = bg_library_image(lib, 1), *pt = bg_library_image(lib, 2);
        char first[512];
        check(bad == NULL && bg_library_failed(lib, first, sizeof first) == 1 && strstr(first, "bad.png"),
              "an unreadable file gives NULL, is counted once and named: %s", first);
        check(bg_library_image(lib, 0) == NULL && bg_library_failed(lib, NULL, 0) == 1, "and is not retried");
        check(ph && !bg_library_tile(lib, 1) && ph->h == 20 && ph->w == 27, "the photo shrunk to short side 20");
        check(pt && bg_library_tile(lib, 2) && pt->w == 3 && pt->h == 2 && pt->rgb[3] == 42, "the pattern as stored");
        check(bg_library_image(lib, 1) == ph, "decoded once");
        uint8_t *a = malloc(24 * 16 * 3), *b = malloc(24 * 16 * 3);
        bool same = true, from_lib = false, fallback = false;
        int ok = 0;
        for (int key = 0; key < 12; key++) {
            int r = bg_photo(lib, 3, (uint64_t)key, 24, 16, a);
            bg_photo(lib, 3, (uint64_t)key, 24, 16, b);
            same &= r < 0 || memcmp(a, b, 24 * 16 * 3) == 0;
            ok += r == 0;
        }
        check(same && ok > 0 && ok < 12, "library crops are deterministic per key; %d of 12 drew a readable image", ok);
        for (int key = 0; key < 12; key++) {
            bg_draw(lib, 1, 3, (uint64_t)key, 24, 16, a);
            if (bg_photo(lib, 3, (uint64_t)key, 24, 16, b) == 0) from_lib |= memcmp(a, b, 24 * 16 * 3) == 0;
            else fallback = true;
        }
        check(from_lib && fallback, "bg_draw with photo_p 1 draws library crops, procedural where the image is bad");
        free(a);
        free(b);
        bg_library_free(lib);
    }
    snprintf(p, sizeof p, "%s/missing", dir);
    bg_library *none = bg_library_load(p, 20, false);
    check(none == NULL && strstr(sn_last_error(), "missing"), "a missing folder is an error naming it");
    none = bg_library_load(p, 20, true);
    check(none && bg_library_size(none) == 0, "unless optional: an empty library");
    uint8_t px[8 * 8 * 3];
    check(bg_photo(none, 1, 1, 8, 8, px) < 0, "an empty library draws no photo");
    bg_library_free(none);
    image_free(&im);
    run_capture(log, sizeof log, "rm -rf %s", dir);
}

/* the shared library: one per (folders, size), the same pointer for every caller */
static void shared(void) {
    char dir[] = "/tmp/stylenet_bgs_XXXXXX", log[256];
    if (!check(mkdtemp(dir) != NULL, "temporary folder")) return;
    bg_library *a = bg_library_shared(dir, 64, false), *b = bg_library_shared(dir, 64, false);
    bg_library *c = bg_library_shared(dir, 32, false);
    check(a && a == b && c && c != a, "the same folders and size share one library");
    run_capture(log, sizeof log, "rm -rf %s", dir);
}

/* the procedural pool: one texture per (seed, t), generated once; bg_draw's crops of it keyed */
static void pool(void) {
    const image *a = bg_pool_texture(11, 3), *b = bg_pool_texture(11, 3), *c = bg_pool_texture(12, 3);
    check(a && a == b && a->w == BG_POOL_SIDE && a->h == BG_POOL_SIDE, "a pool texture is generated once");
    uint8_t *ref = malloc((size_t)BG_POOL_SIDE * BG_POOL_SIDE * 3);
    bg_procedural(3 % BG_FAMILIES, 11, 0xB6000000ull + 3, BG_POOL_SIDE, BG_POOL_SIDE, ref);
    check(a && memcmp(a->rgb, ref, (size_t)BG_POOL_SIDE * BG_POOL_SIDE * 3) == 0, "it is bg_procedural's texture");
    check(c && c != a && memcmp(c->rgb, a->rgb, (size_t)BG_POOL_SIDE * BG_POOL_SIDE * 3) != 0, "another seed, another pool");
    uint8_t x[32 * 24 * 3], y[32 * 24 * 3], z[32 * 24 * 3];
    bg_draw(NULL, 1, 11, 42, 32, 24, x);
    bg_draw(NULL, 1, 11, 42, 32, 24, y);
    bg_draw(NULL, 1, 11, 43, 32, 24, z);
    check(memcmp(x, y, sizeof x) == 0 && memcmp(x, z, sizeof x) != 0, "bg_draw without photos: keyed crops of the pool");
    free(ref);
}

static const test_case cases[] = {
    {"pool", pool},
    {"deterministic", deterministic},
    {"varied", varied},
    {"library", library},
    {"shared", shared},
};

TEST_MAIN(cases)

