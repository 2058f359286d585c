/* test_augment.c - the affine warp against torch grid_sample (tools/fixtures_data.py), identity,
 * flip, the validation transform, the random parameters' ranges and determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/augment.h"
#include "io/image.h"
#include "io/safetensors.h"

static image make_image(int w, int h, unsigned seed) {
    image im = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    unsigned s = seed * 2654435761u + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            int noise = (int)(s >> 27) - 16;
            int v[3] = {(x * 255) / (w > 1 ? w - 1 : 1), (y * 255) / (h > 1 ? h - 1 : 1), ((x + 2 * y) * 7) % 256};
            for (int c = 0; c < 3; c++) {
                int q = v[c] + noise;
                im.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    return im;
}

static double max_abs(const float *a, const float *b, size_t n, double *mean) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
        s += d;
    }
    if (mean) *mean = s / (double)n;
    return m;
}

/* warps of the fixture's sources equal torch grid_sample's */
static void oracle(void) {
    st_file *f = st_open(fixture_path("data_warp.safetensors"));
    if (!check(f != NULL, "open data_warp.safetensors (%s)", f ? "ok" : sn_last_error())) return;
    image src[2];
    for (int k = 0; k < 2; k++) {
        char name[16];
        snprintf(name, sizeof name, "src%d", k);
        const st_tensor *t = st_find(f, name);
        src[k].h = (int)t->shape[0];
        src[k].w = (int)t->shape[1];
        src[k].rgb = malloc(t->nbytes);
        memcpy(src[k].rgb, t->data, t->nbytes);
    }
    for (int k = 0;; k++) {
        char pn[32], on[32];
        snprintf(pn, sizeof pn, "params%d", k);
        snprintf(on, sizeof on, "out%d", k);
        const st_tensor *tp = st_find(f, pn), *to = st_find(f, on);
        if (!tp || !to) break;
        float p[11];
        st_read_f32(f, tp, p, 11);
        int S = (int)p[10];
        float *ref = malloc(sizeof(float) * to->numel), *got = malloc(sizeof(float) * (size_t)S * S * 3);
        st_read_f32(f, to, ref, to->numel);
        aug_params a = {.angle = p[0], .zoom = p[1], .zoom_x = p[2], .zoom_y = p[3], .flip = p[4] != 0,
                        .crop_x = p[5], .crop_y = p[6], .brightness = p[7], .contrast = p[8]};
        const image *s = &src[(int)p[9]];
        aug_warp(s, &a, S, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, got);
        double mean, e = max_abs(got, ref, (size_t)S * S * 3, &mean);
        /* values are normalised (~[-2, 2.6]); 1e-3 is a 1/20 of a grey level */
        check(e < 2e-3, "warp %d (angle %.1f zoom %.2f flip %d lighting %.2f/%.2f, %dx%d from %dx%d) equals torch "
              "grid_sample reflection: max err %.2g, mean %.2g", k, (double)p[0], (double)p[1], (int)p[4],
              (double)p[7], (double)p[8], S, S, s->w, s->h, e, mean);
        free(ref);
        free(got);
    }
    image_free(&src[0]);
    image_free(&src[1]);
    st_close(f);
}

static const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};

/* a photo (Style 1_2_001.png), or a synthetic 150x150 image when the shared data is missing */
static image photo(void) {
    image st;
    if (image_load(shared_path("data/style/1_2_001.png"), &st) == 0) return st;
    return make_image(150, 150, 2);
}

/* identity warp at the source size is the image itself, and equals the validation transform */
static void identity(void) {
    aug_params id;
    aug_identity(&id);
    image sq = make_image(64, 64, 1);
    float *a = malloc(sizeof(float) * 64 * 64 * 3), *b = malloc(sizeof(float) * 64 * 64 * 3);
    aug_warp(&sq, &id, 64, zero, one, a);
    double e = 0;
    for (int i = 0; i < 64 * 64 * 3; i++) e = fmax(e, fabs(a[i] - sq.rgb[i] / 255.0));
    check(e < 1e-6, "identity warp (rotation 0, zoom 1, no flip) reproduces the image exactly (max err %.2g)", e);
    aug_center(&sq, 64, zero, one, b);
    check(max_abs(a, b, 64 * 64 * 3, NULL) < 1e-6, "identity warp equals the validation transform at the same size");
    image_free(&sq);
    free(a);
    free(b);
}

static void flip(void) {
    aug_params id, fl;
    aug_identity(&id);
    fl = id;
    fl.flip = true;
    image sq = make_image(64, 64, 1);
    float *a = malloc(sizeof(float) * 64 * 64 * 3), *b = malloc(sizeof(float) * 64 * 64 * 3);
    aug_warp(&sq, &id, 64, zero, one, a);
    aug_warp(&sq, &fl, 64, zero, one, b);
    double e = 0;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++) e = fmax(e, fabs(b[(y * 64 + x) * 3 + c] - a[(y * 64 + 63 - x) * 3 + c]));
    check(e < 1e-6, "flip mirrors every row exactly (max err %.2g)", e);
    image_free(&sq);
    free(a);
    free(b);
}

/* a 150x150 photo-like image to 128: identity warp vs the antialiased resize */
static void identity_resize(void) {
    aug_params id;
    aug_identity(&id);
    image big = photo();
    float *a = malloc(sizeof(float) * 128 * 128 * 3), *b = malloc(sizeof(float) * 128 * 128 * 3);
    aug_warp(&big, &id, 128, zero, one, a);
    aug_center(&big, 128, zero, one, b);
    double mean, mx = max_abs(a, b, 128 * 128 * 3, &mean);
    check(mean < 2.0 / 255 && mx < 0.25, "identity warp 150->128 matches the plain antialiased resize within tolerance "
          "(mean %.2f, max %.1f grey levels)", mean * 255, mx * 255);
    image_free(&big);
    free(a);
    free(b);
}

/* validation: a non-square image is resized by its short side and centre cropped */
static void center_crop(void) {
    image rect = make_image(90, 60, 3), rs;
    float *a = malloc(sizeof(float) * 32 * 32 * 3);
    image_resize(&rect, 48, 32, &rs);
    aug_center(&rect, 32, zero, one, a);
    double e = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++) e = fmax(e, fabs(a[(y * 32 + x) * 3 + c] - rs.rgb[(y * 48 + x + 8) * 3 + c] / 255.0));
    check(e < 1e-6, "validation transform: short side resized, centre crop (max err %.2g)", e);
    image_free(&rect);
    image_free(&rs);
    free(a);
}

static void normalisation(void) {
    image sq = make_image(64, 64, 1);
    float *a = malloc(sizeof(float) * 64 * 64 * 3);
    aug_center(&sq, 64, AUG_HALF, AUG_HALF, a);
    double e = 0;
    for (int i = 0; i < 64 * 64 * 3; i++) e = fmax(e, fabs(a[i] - (sq.rgb[i] / 255.0 - 0.5) / 0.5));
    check(e < 1e-5, "normalisation (v/255 - mean)/std into [-1, 1] (max err %.2g)", e);
    image_free(&sq);
    free(a);
}

/* random parameters: fastai ranges and probabilities, keyed by (seed, epoch, item) */
static void draw_ranges(void) {
    aug_opts o;
    aug_defaults(&o);
    int n = 4000, n_flip = 0, n_rot = 0, n_zoom = 0, n_bri = 0, n_con = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        aug_params p;
        aug_draw(&o, 7, 3, (uint64_t)i, &p);
        n_flip += p.flip;
        n_rot += p.angle != 0;
        n_zoom += p.zoom != 1;
        n_bri += p.brightness != 0.5f;
        n_con += p.contrast != 1;
        bad += fabsf(p.angle) > 10 || p.zoom < 1 || p.zoom > 1.1f || p.brightness < 0.4f || p.brightness > 0.6f ||
               p.contrast < 0.8f - 1e-6f || p.contrast > 1.25f + 1e-6f || p.zoom_x < 0 || p.zoom_x > 1 || p.crop_x < 0 ||
               p.crop_x > 1;
    }
    check(bad == 0, "all parameters within fastai's ranges (rotate +-10, zoom 1..1.1, brightness 0.4..0.6, contrast "
          "0.8..1.25)");
    check(abs(n_flip - n / 2) < n / 20 && abs(n_rot - 3 * n / 4) < n / 20 && abs(n_zoom - 3 * n / 4) < n / 20 &&
              abs(n_bri - 3 * n / 4) < n / 20 && abs(n_con - 3 * n / 4) < n / 20,
          "probabilities: flip %.2f (0.5), rotate %.2f, zoom %.2f, brightness %.2f, contrast %.2f (0.75)",
          (double)n_flip / n, (double)n_rot / n, (double)n_zoom / n, (double)n_bri / n, (double)n_con / n);
}

/* field by field: the struct has padding after .flip, which memcmp would read */
static bool same_params(const aug_params *a, const aug_params *b) {
    return a->angle == b->angle && a->zoom == b->zoom && a->zoom_x == b->zoom_x && a->zoom_y == b->zoom_y &&
           a->flip == b->flip && a->crop_x == b->crop_x && a->crop_y == b->crop_y && a->brightness == b->brightness &&
           a->contrast == b->contrast;
}

/* the same (seed, epoch, item) draws the same parameters and so the same warp */
static void determinism(void) {
    aug_opts o;
    aug_defaults(&o);
    aug_params p1, p2, p3, p4;
    aug_draw(&o, 7, 3, 11, &p1);
    aug_draw(&o, 7, 3, 11, &p2);
    aug_draw(&o, 7, 4, 11, &p3);
    aug_draw(&o, 8, 3, 11, &p4);
    check(same_params(&p1, &p2), "same (seed, epoch, item): same parameters");
    check(!same_params(&p1, &p3) && !same_params(&p1, &p4), "another epoch or seed: other parameters");
    image big = photo();
    float *a = malloc(sizeof(float) * 128 * 128 * 3), *b = malloc(sizeof(float) * 128 * 128 * 3);
    aug_warp(&big, &p1, 128, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, a);
    aug_warp(&big, &p2, 128, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, b);
    check(!memcmp(a, b, sizeof(float) * 128 * 128 * 3), "the warp is deterministic");
    bool finite = true;
    for (int i = 0; i < 128 * 128 * 3; i++) finite &= isfinite(a[i]) && a[i] > -2.2f && a[i] < 2.7f;
    check(finite, "augmented values finite and within the normalised range");
    image_free(&big);
    free(a);
    free(b);
}

static const test_case cases[] = {
    {"oracle", oracle},
    {"identity", identity},
    {"flip", flip},
    {"identity_resize", identity_resize},
    {"center_crop", center_crop},
    {"normalisation", normalisation},
    {"draw_ranges", draw_ranges},
    {"determinism", determinism},
};

TEST_MAIN(cases)
