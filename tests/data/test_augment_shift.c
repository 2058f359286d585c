/* test_augment_shift.c - the shift augmentations: off by default (aug_warp unchanged), identity
 * at zero strength, determinism per key, each transform's ranges and effect, bounds, and CutMix
 * targets in the loader (shares of the area, summing to 1, the same for any thread count). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/matte.h"

enum { S = 48 };
static const float ZERO[3] = {0, 0, 0}, ONE[3] = {1, 1, 1};

/* a textured product (a disc of colour fg with stripes) on a near-white background */
static image product(int w, int h, const uint8_t fg[3]) {
    image im = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.rgb + ((size_t)y * w + x) * 3;
            bool in = hypotf((float)x - w / 2.0f, (float)y - h / 2.0f) < 0.3f * (float)(w < h ? w : h);
            for (int c = 0; c < 3; c++) p[c] = in ? (uint8_t)(fg[c] + ((x / 3) % 2) * 20) : 252;
        }
    return im;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* aug_draw then aug_draw_shift of one image */
static void draw(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p, aug_shift *s) {
    aug_draw(o, seed, epoch, item, p);
    aug_draw_shift(o, seed, epoch, item, p, s);
}

static void all_on(aug_opts *o) {
    aug_defaults(o);
    aug_shift_preset(o);
    o->bg_p = o->shadow_p = o->rotate_full_p = o->rrc_p = o->persp_p = o->color_p = 1;
    o->blur_p = o->jpeg_p = o->erase_p = o->cutmix_p = 1;
}

/* defaults: nothing drawn, so the loader calls aug_warp as before */
static void off_by_default(void) {
    aug_opts o;
    aug_defaults(&o);
    check(!aug_shift_enabled(&o), "aug_defaults has every shift augmentation off");
    bool inactive = true, same = true;
    for (int i = 0; i < 50; i++) {
        aug_params p, q;
        aug_shift s;
        aug_draw(&o, 3, 1, (uint64_t)i, &p);
        q = p;
        aug_draw_shift(&o, 3, 1, (uint64_t)i, &q, &s);
        inactive &= !s.active;
        same &= memcmp(&p, &q, sizeof p) == 0;
    }
    check(inactive && same, "off: aug_draw_shift draws nothing and leaves aug_draw's parameters");
    char d[1024];
    aug_shift_describe(&o, d, sizeof d);
    check(d[0] == 0, "nothing to describe");
    aug_shift_preset(&o);
    o.bg_dirs = "x";
    aug_shift_describe(&o, d, sizeof d);
    check(strstr(d, "--bg-p 0.5 --bg-photo-p 0.5 --bg-min-scale 0.5 --shadow-p 0.5 --backgrounds x --rotate-full-p 0.1") == d &&
              strstr(d, "--jpeg-p 0.2 --jpeg-min-q 30") && strstr(d, "--cutmix-p 0.1"),
          "the preset as flags: %s", d);
    all_on(&o);
    aug_shift_off(&o);
    check(!aug_shift_enabled(&o), "aug_shift_off turns everything off");
}

/* every transform at probability 1 and zero strength renders what aug_warp does */
static void identity_at_zero(void) {
    const uint8_t red[3] = {170, 40, 50};
    image im = product(60, 50, red);
    aug_opts o;
    aug_defaults(&o);
    o.rrc_p = o.persp_p = o.color_p = o.blur_p = 1;
    o.rrc_min_scale = 1, o.rrc_ratio = 1, o.persp = 0, o.hue = o.saturation = o.contrast = 0, o.blur_sigma = 0;
    float *a = malloc(sizeof(float) * S * S * 3), *b = malloc(sizeof(float) * S * S * 3);
    double worst = 0;
    for (int i = 0; i < 20; i++) {
        aug_params p;
        aug_shift s;
        draw(&o, 5, 0, (uint64_t)i, &p, &s);
        aug_render(&im, NULL, &p, &s, &o, 5, S, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, a);
        aug_warp(&im, &p, S, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, b);
        worst = fmax(worst, max_diff(a, b, (size_t)S * S * 3));
    }
    check(worst < 2e-4, "zero strength: aug_render equals aug_warp (max diff %.2g)", worst);
    free(a);
    free(b);
    image_free(&im);
}

static void determinism(void) {
    const uint8_t blue[3] = {30, 60, 170};
    image im = product(64, 56, blue);
    matte_map m;
    matte_opts mo;
    matte_defaults(&mo);
    check(matte_map_build(&im, &mo, &m) == 0 && m.ok, "the synthetic product has a matte");
    aug_opts o;
    all_on(&o);
    o.bg_photo_p = 0;
    float *a = malloc(sizeof(float) * S * S * 3), *b = malloc(sizeof(float) * S * S * 3);
    bool same = true, differ = true, finite = true;
    for (int i = 0; i < 10; i++) {
        aug_params p[2];
        aug_shift s[2];
        for (int k = 0; k < 2; k++) {
            draw(&o, 9, 2, (uint64_t)i, &p[k], &s[k]);
        }
        aug_render(&im, &m, &p[0], &s[0], &o, 9, S, ZERO, ONE, a);
        aug_render(&im, &m, &p[1], &s[1], &o, 9, S, ZERO, ONE, b);
        same &= memcmp(a, b, sizeof(float) * S * S * 3) == 0;
        draw(&o, 9, 3, (uint64_t)i, &p[1], &s[1]);
        aug_render(&im, &m, &p[1], &s[1], &o, 9, S, ZERO, ONE, b);
        differ &= memcmp(a, b, sizeof(float) * S * S * 3) != 0;
        for (int k = 0; k < S * S * 3; k++) finite &= isfinite(a[k]) && a[k] >= 0 && a[k] <= 1;
    }
    check(same, "the same (seed, epoch, item) renders the same pixels");
    check(differ, "another epoch renders other pixels");
    check(finite, "everything on: values finite and within [0, 1] before normalisation");
    matte_map_free(&m);
    free(a);
    free(b);
    image_free(&im);
}

static void ranges(void) {
    aug_opts o;
    all_on(&o);
    float amax = 0, zlo = 9, zhi = 0, alo = 9, ahi = 0, pmax = 0, hmax = 0, slo = 9, shi = 0;
    int qlo = 100, qhi = 0, n_bg = 0;
    for (int i = 0; i < 400; i++) {
        aug_params p;
        aug_shift s;
        draw(&o, 1, 0, (uint64_t)i, &p, &s);
        amax = fmaxf(amax, fabsf(p.angle));
        zlo = fminf(zlo, p.zoom), zhi = fmaxf(zhi, p.zoom);
        alo = fminf(alo, s.aspect), ahi = fmaxf(ahi, s.aspect);
        for (int k = 0; k < 8; k++) pmax = fmaxf(pmax, fabsf(s.persp[k]));
        hmax = fmaxf(hmax, fabsf(s.hue));
        slo = fminf(slo, s.sat), shi = fmaxf(shi, s.sat);
        qlo = s.jpeg_q < qlo ? s.jpeg_q : qlo, qhi = s.jpeg_q > qhi ? s.jpeg_q : qhi;
        n_bg += s.bg && s.bg_scale >= o.bg_min_scale && s.bg_scale <= 1;
    }
    check(amax > 170 && amax <= 180, "full rotation: angles up to %.0f degrees", amax);
    check(zlo >= 1 && zhi <= 1 / sqrtf(o.rrc_min_scale) + 1e-4f && zhi > 1.5f, "crop zoom in [%.2f, %.2f]", zlo, zhi);
    check(alo >= 0.75f - 1e-4f && ahi <= 4.0f / 3 + 1e-4f && ahi > 1.25f, "crop aspect in [%.3f, %.3f]", alo, ahi);
    check(pmax <= o.persp && pmax > 0.9f * o.persp, "perspective corner moves up to %.3f", pmax);
    check(hmax <= o.hue && slo >= 1 - o.saturation && shi <= 1 + o.saturation, "colour ranges");
    check(qlo >= o.jpeg_min_q && qhi <= 95, "JPEG quality in [%d, %d]", qlo, qhi);
    check(n_bg == 400, "background at p 1 with the product scale in [bg_min_scale, 1] (%d)", n_bg);
    o.rotate_full_p = 0.25f;
    int n = 0;
    for (int i = 0; i < 2000; i++) {
        aug_params p;
        aug_shift s;
        draw(&o, 1, 0, (uint64_t)i, &p, &s);
        n += fabsf(p.angle) > o.max_rotate;
    }
    check(n > 350 && n < 650, "rotation over the full circle at p 0.25: %d of 2000 beyond max_rotate", n);
}

/* one transform alone on a plain warp: the result's change */
static void render_one(const image *im, const matte_map *m, const aug_shift *s, float *out) {
    aug_params p;
    aug_identity(&p);
    aug_opts o;
    aug_defaults(&o);
    o.bg_photo_p = 0;
    aug_render(im, m, &p, s, &o, 1, S, ZERO, ONE, out);
}

static aug_shift plain(void) {
    aug_shift s = {.active = true, .aspect = 1, .bg_scale = 1, .sat = 1, .con = 1};
    return s;
}

static void transforms(void) {
    const uint8_t grey[3] = {120, 120, 120};
    image im = product(S, S, grey);
    float *base = malloc(sizeof(float) * S * S * 3), *x = malloc(sizeof(float) * S * S * 3);
    aug_shift s = plain();
    render_one(&im, NULL, &s, base);
    /* colour: greys stay grey under hue and saturation; contrast pulls towards 0.5 */
    s.color = true, s.hue = 0.2f, s.sat = 1.5f;
    render_one(&im, NULL, &s, x);
    check(max_diff(x, base, (size_t)S * S * 3) < 1e-3, "hue and saturation keep greys");
    s = plain(), s.color = true, s.con = 0.5f;
    render_one(&im, NULL, &s, x);
    check(fabsf(x[0] - (0.5f + 0.5f * (base[0] - 0.5f))) < 1e-4, "contrast 0.5 halves the distance to mid grey");
    /* blur: lowers the variance of the striped product, keeps the mean */
    s = plain(), s.blur = 1.2f;
    render_one(&im, NULL, &s, x);
    double va = 0, vb = 0, ma = 0, mb = 0;
    for (int i = 0; i < S * S * 3; i++) ma += base[i], mb += x[i];
    ma /= S * S * 3, mb /= S * S * 3;
    for (int i = 0; i < S * S * 3; i++) va += (base[i] - ma) * (base[i] - ma), vb += (x[i] - mb) * (x[i] - mb);
    check(vb < 0.9 * va && fabs(ma - mb) < 2e-3, "blur: variance %.3f -> %.3f, mean kept", va, vb);
    /* JPEG: close to the original, not equal */
    s = plain(), s.jpeg_q = 60;
    render_one(&im, NULL, &s, x);
    double d = max_diff(x, base, (size_t)S * S * 3), md = 0;
    for (int i = 0; i < S * S * 3; i++) md += fabs(x[i] - base[i]) / (S * S * 3);
    check(d > 0 && md < 0.03, "JPEG at quality 60 changes pixels a little (mean %.4f)", md);
    /* erasing: only the box changes */
    s = plain(), s.erase = true, s.key = 77;
    float box[4] = {0.25f, 0.5f, 0.5f, 0.25f};
    memcpy(s.erase_box, box, sizeof box);
    render_one(&im, NULL, &s, x);
    bool outside = true;
    int changed = 0;
    for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
            bool in = xx >= 12 && xx < 36 && y >= 24 && y < 36;
            float dd = fabsf(x[(y * S + xx) * 3] - base[(y * S + xx) * 3]);
            if (!in) outside &= dd == 0;
            else changed += dd > 0;
        }
    check(outside && changed > 200, "erasing changes the box (%d of 288 pixels) and nothing else", changed);
    /* perspective: moves pixels */
    s = plain(), s.persp_on = true;
    for (int k = 0; k < 8; k++) s.persp[k] = (k % 3 - 1) * 0.2f;
    render_one(&im, NULL, &s, x);
    check(max_diff(x, base, (size_t)S * S * 3) > 0.05, "perspective warps the image");
    free(base);
    free(x);
    image_free(&im);
}

static void background(void) {
    const uint8_t red[3] = {200, 20, 20};
    image im = product(S, S, red);
    matte_map m;
    matte_opts mo;
    matte_defaults(&mo);
    matte_map_build(&im, &mo, &m);
    float *base = malloc(sizeof(float) * S * S * 3), *x = malloc(sizeof(float) * S * S * 3);
    aug_shift s = plain();
    render_one(&im, &m, &s, base);
    s.bg = true, s.key = 5;
    render_one(&im, &m, &s, x);
    const int c = (S / 2 * S + S / 2) * 3;
    check(fabsf(x[c] - base[c]) < 1e-5 && fabsf(x[c + 1] - base[c + 1]) < 1e-5, "the product's centre stays");
    int moved = 0;
    for (int y = 0; y < 4; y++)
        for (int xx = 0; xx < S; xx++) moved += fabsf(x[(y * S + xx) * 3] - base[(y * S + xx) * 3]) > 0.02f;
    check(moved > 100, "the white background is replaced (%d of %d top pixels)", moved, 4 * S);
    /* without a usable matte the background stays */
    m.ok = false;
    render_one(&im, &m, &s, x);
    check(max_diff(x, base, (size_t)S * S * 3) == 0, "no matte: no new background");
    /* product scale 0.5: the product's area shrinks to about a quarter */
    m.ok = true;
    s.bg_scale = 0.5f;
    render_one(&im, &m, &s, x);
    int red0 = 0, red1 = 0;
    for (int i = 0; i < S * S; i++) red0 += base[i * 3] > 0.7f && base[i * 3 + 1] < 0.3f, red1 += x[i * 3] > 0.7f && x[i * 3 + 1] < 0.3f;
    check(red1 > 0.15 * red0 && red1 < 0.4 * red0, "product scale 0.5: %d of %d product pixels", red1, red0);
    matte_map_free(&m);
    free(base);
    free(x);
    image_free(&im);
}

/* a 4-image folder set: a/ red products, b/ blue ones */
static dataset *tiny_set(char *dir) {
    snprintf(dir, 64, "/tmp/stylenet_shift_XXXXXX");
    if (!mkdtemp(dir)) return NULL;
    char p[256], log[256];
    run_capture(log, sizeof log, "mkdir -p %s/a %s/b", dir, dir);
    const uint8_t cols[2][3] = {{200, 30, 30}, {30, 30, 200}};
    for (int k = 0; k < 8; k++) {
        image im = product(40 + k, 36, cols[k % 2]);
        snprintf(p, sizeof p, "%s/%c/%d.png", dir, k % 2 ? 'b' : 'a', k);
        image_save_png(&im, p);
        image_free(&im);
    }
    dataset *ds = ds_open(&(ds_options){.root = dir});
    if (ds && ds_decode(ds, NULL) < 0) {
        ds_free(ds);
        ds = NULL;
    }
    return ds;
}

static void cutmix_targets(void) {
    char dir[64], log[256];
    dataset *ds = tiny_set(dir);
    if (!check(ds != NULL, "tiny data set (%s)", ds ? "ok" : sn_last_error())) return;
    int idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    loader_opts lo = loader_defaults();
    lo.size = 32, lo.batch = 8, lo.seed = 4, lo.shuffle = false;
    lo.aug.cutmix_p = 1;
    lo.aug.bg_p = 0.5f;
    lo.aug.bg_dirs = "none";
    uint64_t h[2] = {0, 0};
    bool sums = true, shares = true, mixed = false;
    for (int th = 0; th < 2; th++) {
        lo.n_threads = th * 2;
        loader *L = loader_create(ds, idx, 8, &lo);
        float x[8 * 32 * 32 * 3], t[16];
        int y[8];
        if (!check(L != NULL, "loader (%s)", L ? "ok" : sn_last_error())) break;
        for (int e = 0; e < 2; e++) {
            int n = loader_next(L, x, y, t);
            loader_next(L, x, y, t); /* the epoch's end */
            for (int k = 0; k < n; k++) {
                float a = t[k * 2], b = t[k * 2 + 1], own = ds->items[k].label == 0 ? a : b;
                sums &= fabsf(a + b - 1) < 1e-6f;
                /* the share of the other class is a whole number of pixels out of 32 x 32, 10-50% */
                float other = 1 - own, px = other * 1024;
                shares &= other == 0 || (fabsf(px - roundf(px)) < 1e-2f && other >= 0.05f && other <= 0.55f);
                mixed |= other > 0;
            }
            h[th] = fnv(x, sizeof(float) * (size_t)n * 32 * 32 * 3, h[th] ? h[th] : 0xcbf29ce484222325ull);
            h[th] = fnv(t, sizeof(float) * (size_t)n * 2, h[th]);
        }
        loader_free(L);
    }
    check(sums, "CutMix targets sum to 1");
    check(shares && mixed, "the partner's target is its share of the area (10-50%%)");
    check(h[0] == h[1] && h[0] != 0, "the same batches with 0 and 2 threads");
    ds_free(ds);
    run_capture(log, sizeof log, "rm -rf %s", dir);
}

/* `stylenet data --grid` takes the augmentation flags; a value out of range is a usage error */
static void cli(void) {
    char dir[64], log[16384], png[128];
    dataset *ds = tiny_set(dir);
    if (!check(ds != NULL, "tiny data set")) return;
    ds_free(ds);
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(png, sizeof png, "%s/grid.png", dir);
    int rc = run_capture(log, sizeof log, "%s data --data %s --valid-pct 0.25 --grid %s --grid-n 6 --size 32 --shift-aug "
                         "--bg-p 1 --backgrounds none --cutmix-p 1", bin, dir, png);
    image im;
    check(rc == 0 && strstr(log, "grid") && image_load(png, &im) == 0, "data --grid with the shift flags: %s",
          flat_tail(log, 200));
    if (rc == 0) image_free(&im);
    rc = run_capture(log, sizeof log, "%s data --data %s --bg-p 1.5 --grid %s", bin, dir, png);
    check(rc == 2 && strstr(log, "--bg-p takes a number from 0 to 1"), "--bg-p 1.5 is refused: %s", flat_tail(log, 200));
    rc = run_capture(log, sizeof log, "%s data --data %s --bg-p 1 --backgrounds %s/nowhere --grid %s", bin, dir, dir, png);
    check(rc != 0 && strstr(log, "nowhere") && strstr(log, "not a folder"), "a missing --backgrounds folder is named: %s",
          flat_tail(log, 200));
    rc = run_capture(log, sizeof log, "%s train --help", bin);
    check(rc == 0 && strstr(log, "--shift-aug") && strstr(log, "--cutmix-p"), "train --help lists the flags");
    run_capture(log, sizeof log, "rm -rf %s", dir);
}

static const test_case cases[] = {
    {"off_by_default", off_by_default},
    {"identity_at_zero", identity_at_zero},
    {"determinism", determinism},
    {"ranges", ranges},
    {"transforms", transforms},
    {"background", background},
    {"cutmix_targets", cutmix_targets},
    {"cli", cli},
};

TEST_MAIN(cases)
