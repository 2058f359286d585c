/* test_matte.c - the soft matte of synthetic catalogue photos (product on white, on flat grey,
 * touching the border, with a hole; an all-white and a full-frame photo), compositing values with
 * and without a shadow, and the lazily built matte cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "data/matte.h"

/* w x h of colour bg with a filled disc (colour fg) of radius r at (cx, cy), its rim
 * anti-aliased over 2 pixels as photos are; hole: an inner disc of radius r/3 in the background
 * colour */
static image disc(int w, int h, const uint8_t bg[3], const uint8_t fg[3], float cx, float cy, float r, bool hole) {
    image im = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float d = hypotf((float)x + 0.5f - cx, (float)y + 0.5f - cy);
            float cover = (r - d) * 0.5f + 0.5f;
            if (hole) cover = fminf(cover, (d - r / 3) * 0.5f + 0.5f);
            cover = cover < 0 ? 0 : cover > 1 ? 1 : cover;
            for (int c = 0; c < 3; c++)
                im.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)lroundf(cover * fg[c] + (1 - cover) * bg[c]);
        }
    return im;
}

static float at(const float *a, int w, int x, int y) { return a[(size_t)y * w + x]; }

/* matte_estimate with the default options into *alpha (malloc'd); its result */
static int estimate(const image *im, float **alpha) {
    matte_opts o;
    matte_defaults(&o);
    *alpha = malloc(sizeof(float) * (size_t)im->w * im->h);
    return matte_estimate(im, &o, *alpha);
}

/* the share of pixels whose alpha is on the wrong side of 0.5 against the disc, away from its edge */
static double wrong(const float *a, int w, int h, float cx, float cy, float r, bool hole) {
    long bad = 0, n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float d = hypotf((float)x + 0.5f - cx, (float)y + 0.5f - cy);
            if (fabsf(d - r) < 5 || (hole && fabsf(d - r / 3) < 5)) continue;
            bool in = d < r; /* the hole counts as product */
            bad += in != (at(a, w, x, y) > 0.5f);
            n++;
        }
    return (double)bad / (double)n;
}

static void on_white(void) {
    const uint8_t white[3] = {255, 255, 255}, red[3] = {180, 30, 40};
    image im = disc(96, 80, white, red, 48, 40, 25, false);
    float *a;
    int r = estimate(&im, &a);
    check(r == 1, "a product on white has a matte (%d)", r);
    check(wrong(a, 96, 80, 48, 40, 25, false) == 0, "alpha is 1 inside and 0 outside, away from the edge");
    check(at(a, 96, 0, 0) == 0 && at(a, 96, 48, 40) == 1, "corner 0, centre 1");
    /* soft edge: values strictly between 0 and 1 at the boundary, and none outside the disc */
    bool soft = false, halo = false;
    for (int x = 48; x < 96; x++) {
        float v = at(a, 96, x, 40), d = (float)x + 0.5f - 48;
        soft |= v > 0 && v < 1;
        halo |= d > 25.5f && v > 0;
    }
    check(soft, "the edge is feathered");
    check(!halo, "no alpha outside the product (no white halo)");
    /* the anti-aliased rim is soft; the strongly coloured inside is opaque right up to it */
    check(at(a, 96, 48 + 22, 40) == 1, "opaque 3 px inside the rim (%.2f)", at(a, 96, 48 + 22, 40));
    free(a);
    image_free(&im);
}

static void flat_grey(void) {
    const uint8_t grey[3] = {205, 207, 204}, blue[3] = {40, 60, 160};
    image im = disc(80, 80, grey, blue, 40, 40, 20, false);
    float *a;
    int r = estimate(&im, &a);
    check(r == 1, "a product on flat light grey has a matte (%d)", r);
    check(wrong(a, 80, 80, 40, 40, 20, false) == 0, "grey background is 0, product 1");
    /* a dark background is not a catalogue background */
    const uint8_t dark[3] = {30, 30, 30}, white[3] = {250, 250, 250};
    image d = disc(80, 80, dark, white, 40, 40, 20, false);
    free(a);
    r = estimate(&d, &a);
    bool ones = true;
    for (int i = 0; i < 80 * 80; i++) ones &= a[i] == 1;
    check(r == 0 && ones, "a dark background gives no matte and alpha 1 everywhere (%d)", r);
    image_free(&d);
    free(a);
    image_free(&im);
}

static void touching_border(void) {
    const uint8_t white[3] = {252, 253, 251}, green[3] = {30, 140, 60};
    image im = disc(100, 80, white, green, 90, 40, 30, false); /* crosses the right edge */
    float *a;
    int r = estimate(&im, &a);
    check(r == 1, "a product touching the border has a matte (%d)", r);
    check(wrong(a, 100, 80, 90, 40, 30, false) == 0, "the part at the border stays product");
    check(at(a, 100, 99, 40) == 1, "border pixel of the product is 1");
    free(a);
    image_free(&im);
}

static void hole_kept(void) {
    const uint8_t white[3] = {255, 255, 255}, gold[3] = {200, 160, 50};
    image im = disc(90, 90, white, gold, 45, 45, 30, true);
    float *a;
    int r = estimate(&im, &a);
    check(r == 1 && at(a, 90, 45, 45) == 1, "a hole inside the product (not connected to the border) stays product");
    check(wrong(a, 90, 90, 45, 45, 30, true) == 0, "and the rest is right");
    free(a);
    image_free(&im);
}

/* a 2-pixel dark chain on white stays opaque; with feathering alone it would fade */
static void thin_chain(void) {
    image im = {.w = 80, .h = 80, .rgb = malloc(80 * 80 * 3)};
    memset(im.rgb, 250, 80 * 80 * 3);
    for (int y = 10; y < 70; y++)
        for (int x = 39; x < 41; x++) memset(im.rgb + ((size_t)y * 80 + x) * 3, 60, 3);
    float *a;
    int r = estimate(&im, &a);
    check(r == 1 && at(a, 80, 39, 40) == 1 && at(a, 80, 40, 40) == 1 && at(a, 80, 41, 40) == 0,
          "the chain is opaque, its neighbours background (%d: %.2f %.2f %.2f)", r, at(a, 80, 39, 40), at(a, 80, 40, 40),
          at(a, 80, 41, 40));
    matte_opts o;
    matte_defaults(&o);
    o.strong = 1;
    matte_estimate(&im, &o, a);
    check(at(a, 80, 39, 40) < 0.5f, "feathering alone fades it (%.2f)", at(a, 80, 39, 40));
    free(a);
    image_free(&im);
}

static void all_white(void) {
    const uint8_t white[3] = {255, 255, 255};
    image im = disc(64, 48, white, white, 0, 0, 0, false);
    float *a;
    int r = estimate(&im, &a);
    bool ones = true;
    for (int i = 0; i < 64 * 48; i++) ones &= a[i] == 1;
    check(r == 0 && ones, "an all-white image has no matte; alpha stays 1 (%d)", r);
    /* a full-frame photo: nothing near the border colour connects to a product */
    const uint8_t c1[3] = {90, 100, 110};
    image f = disc(64, 48, c1, c1, 0, 0, 0, false);
    free(a);
    r = estimate(&f, &a);
    check(r == 0, "a dark full-frame image has no matte (%d)", r);
    image_free(&f);
    free(a);
    image_free(&im);
}

static void composite(void) {
    const int w = 4, h = 3;
    image fg = {.w = w, .h = h, .rgb = malloc(w * h * 3)}, bg = {.w = w, .h = h, .rgb = malloc(w * h * 3)}, out = {0};
    float a[12];
    for (int i = 0; i < w * h; i++) {
        a[i] = (float)i / 11;
        for (int c = 0; c < 3; c++) fg.rgb[i * 3 + c] = (uint8_t)(200 + c), bg.rgb[i * 3 + c] = (uint8_t)(10 * c);
    }
    check(matte_composite(&fg, a, &bg, NULL, &out) == 0, "composite");
    bool ok = true;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) {
            float want = a[i] * (200 + c) + (1 - a[i]) * (10 * c);
            ok &= fabsf(out.rgb[i * 3 + c] - want) <= 0.5f;
        }
    check(ok, "out = alpha fg + (1 - alpha) bg, rounded");
    /* shadow: with alpha 1 only at (0,0) and offset (1,1) without blur, pixel (1,1) darkens */
    float b[12] = {1};
    matte_shadow sh = {.dx = 1, .dy = 1, .blur = 0, .opacity = 0.5f};
    for (int i = 0; i < w * h * 3; i++) bg.rgb[i] = 100;
    check(matte_composite(&fg, b, &bg, &sh, &out) == 0, "composite with a shadow");
    check(out.rgb[(1 * w + 1) * 3] == 50 && out.rgb[(2 * w + 3) * 3] == 100 && out.rgb[0] == 200,
          "the shadow halves the background under the offset matte only (%d %d %d)", out.rgb[(1 * w + 1) * 3],
          out.rgb[(2 * w + 3) * 3], out.rgb[0]);
    image small = {.w = 2, .h = 2, .rgb = bg.rgb};
    check(matte_composite(&fg, a, &small, NULL, &out) < 0, "a background of another size is refused");
    image_free(&fg);
    image_free(&bg);
    image_free(&out);
}

static void cache(void) {
    const uint8_t white[3] = {255, 255, 255}, red[3] = {180, 30, 40};
    image im = disc(64, 64, white, red, 32, 32, 16, false);
    matte_cache *c = matte_cache_create(3, NULL);
    const matte_map *m = matte_cache_get(c, 1, &im), *m2 = matte_cache_get(c, 1, &im);
    check(m && m == m2, "the second request returns the same map");
    check(m && m->ok && m->alpha[32 * 64 + 32] == 255 && m->alpha[0] == 0, "map alpha as bytes");
    double sa = 0, ss = 0;
    for (int i = 0; m && i < 64 * 64; i++) sa += m->alpha[i];
    for (int i = 0; m && i < 16 * 16; i++) ss += m->shadow[i] * MATTE_SHADOW_F * MATTE_SHADOW_F;
    check(m && m->sw == 16 && m->sh == 16 && m->shadow[8 * 16 + 8] > 128 && m->shadow[0] == 0,
          "shadow map: dark under the product, clear at the corner");
    check(fabs(ss - sa) < 0.02 * sa, "the shadow keeps the matte's mass (%.0f vs %.0f)", ss, sa);
    check(matte_cache_get(c, 3, &im) == NULL, "an item out of range is an error");
    matte_cache_free(c);
    image_free(&im);
}

static const test_case cases[] = {
    {"on_white", on_white},   {"flat_grey", flat_grey}, {"touching_border", touching_border},
    {"hole_kept", hole_kept}, {"thin_chain", thin_chain}, {"all_white", all_white}, {"composite", composite},
    {"cache", cache},
};

TEST_MAIN(cases)
