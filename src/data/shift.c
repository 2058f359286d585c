/* shift.c - the stress version of validation photos: matte, new background, clutter, any angle,
 * close-ups, directional light (see shift.h). */
#include "data/shift.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/background.h"
#include "data/dataset_build.h"
#include "data/matte.h"

/* the draws of item k: U(i) uniform in [0, 1) */
typedef struct {
    uint64_t seed, k;
} draws;
static float U(const draws *d, int i) { return rng_uniform(d->seed, 0x73686966ull, d->k * 64 + (uint64_t)i); }

/* box blur of an S x S RGB image with radius r, twice (about a Gaussian); tmp: S * 3 ints */
static void blur_rgb(uint8_t *px, int S, int r, int *tmp) {
    for (int pass = 0; pass < 4; pass++) { /* rows, columns, rows, columns */
        const bool rows = pass % 2 == 0;
        for (int line = 0; line < S; line++) {
            const size_t step = rows ? 3 : (size_t)S * 3, base = rows ? (size_t)line * S * 3 : (size_t)line * 3;
            for (int c = 0; c < 3; c++) {
                int sum = 0;
                for (int i = -r; i <= r; i++) sum += px[base + (size_t)(i < 0 ? 0 : i >= S ? S - 1 : i) * step + c];
                for (int i = 0; i < S; i++) {
                    tmp[i * 3 + c] = sum / (2 * r + 1);
                    int out = i - r < 0 ? 0 : i - r, in = i + r + 1 >= S ? S - 1 : i + r + 1;
                    sum += px[base + (size_t)in * step + c] - px[base + (size_t)out * step + c];
                }
            }
            for (int i = 0; i < S; i++)
                for (int c = 0; c < 3; c++) px[base + (size_t)i * step + c] = (uint8_t)tmp[i * 3 + c];
        }
    }
}

/* the background of an S x S frame: a blurred texture, or two textures split by a line */
static int background(const draws *d, int S, uint8_t *px) {
    const size_t n = (size_t)S * S * 3;
    const uint64_t key = rng_u64(d->seed, 0x6267ull, d->k);
    bg_procedural((int)(U(d, 0) * BG_FAMILIES), SHIFT_SEED, key, S, S, px);
    if (U(d, 1) < 0.5f) { /* out of focus */
        int *tmp = malloc(sizeof(int) * (size_t)S * 3);
        if (!tmp) return sn_error("out of memory");
        blur_rgb(px, S, 1 + (int)(U(d, 2) * S / 40), tmp);
        free(tmp);
        return 0;
    }
    uint8_t *wall = malloc(n);
    if (!wall) return sn_error("out of memory");
    bg_procedural((int)(U(d, 3) * BG_FAMILIES), SHIFT_SEED, key + 1, S, S, wall);
    const double th = 2 * M_PI * U(d, 4), nx = cos(th), ny = sin(th), off = (U(d, 5) - 0.5) * 0.6 * S;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            if ((x - S / 2.0) * nx + (y - S / 2.0) * ny > off)
                memcpy(px + ((size_t)y * S + x) * 3, wall + ((size_t)y * S + x) * 3, 3);
    free(wall);
    return 0;
}

/* the map from frame pixel centres to source pixel coordinates of a w x h photo whose short side
 * covers `scale` of the S x S frame, centred at (cx, cy) (fractions of S), turned by th */
static void placement(int w, int h, int S, double cx, double cy, double scale, double th, double m[6]) {
    const double k = (w < h ? w : h) / (scale * S), c = cos(th), s = sin(th), X = cx * S, Y = cy * S;
    m[1] = k * c, m[2] = k * s, m[4] = -k * s, m[5] = k * c;
    m[0] = w / 2.0 - (m[1] * X + m[2] * Y);
    m[3] = h / 2.0 - (m[4] * X + m[5] * Y);
}

/* the photo and its matte sampled (bilinear) into the frame through m: fg (S x S RGB) and a
 * (S x S, 0 outside the photo) */
static void warp_in(const image *src, const float *alpha, const double m[6], int S, uint8_t *fg, float *a) {
    const int w = src->w, h = src->h;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const double sx = m[0] + m[1] * (x + 0.5) + m[2] * (y + 0.5) - 0.5;
            const double sy = m[3] + m[4] * (x + 0.5) + m[5] * (y + 0.5) - 0.5;
            const size_t o = (size_t)y * S + x;
            const int x0 = (int)floor(sx), y0 = (int)floor(sy);
            const float fx = (float)(sx - x0), fy = (float)(sy - y0);
            float acc[3] = {0, 0, 0}, al = 0, wsum = 0;
            for (int t = 0; t < 4; t++) {
                const int xi = x0 + (t & 1), yi = y0 + (t >> 1);
                const float wt = ((t & 1) ? fx : 1 - fx) * ((t >> 1) ? fy : 1 - fy);
                if (xi < 0 || yi < 0 || xi >= w || yi >= h || wt <= 0) continue;
                const size_t p = (size_t)yi * w + xi;
                for (int c = 0; c < 3; c++) acc[c] += wt * src->rgb[p * 3 + c];
                al += wt * alpha[p];
                wsum += wt;
            }
            a[o] = al;
            for (int c = 0; c < 3; c++) fg[o * 3 + c] = (uint8_t)(wsum > 0 ? acc[c] / wsum + 0.5f : 0);
        }
}

/* directional light, colour temperature and gamma over the frame */
static void light(const draws *d, int S, uint8_t *px) {
    const double th = 2 * M_PI * U(d, 20), nx = cos(th), ny = sin(th), t = 2 * U(d, 21) - 1;
    const double gamma = 0.8 + 0.45 * U(d, 22), gain[3] = {1 + 0.1 * t, 1, 1 - 0.1 * t};
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (uint8_t)(255 * pow(v / 255.0, gamma) + 0.5);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const double u = ((x + 0.5) / S - 0.5) * nx + ((y + 0.5) / S - 0.5) * ny; /* -0.71 .. 0.71 */
            const double f = 0.95 + 0.25 * u / 0.7071;                                 /* 0.7 .. 1.2 */
            uint8_t *p = px + ((size_t)y * S + x) * 3;
            for (int c = 0; c < 3; c++) {
                double v = lut[p[c]] * f * gain[c];
                p[c] = (uint8_t)(v > 255 ? 255 : v + 0.5);
            }
        }
}

/* the matte of item i at its cached size into *alpha (malloc'd) */
static int item_matte(const dataset *ds, int i, float **alpha) {
    image im;
    bool owned;
    if (ds_image(ds, i, &im, &owned) < 0) return -1;
    matte_opts mo;
    matte_defaults(&mo);
    *alpha = malloc(sizeof(float) * (size_t)im.w * im.h);
    int r = *alpha ? matte_estimate(&im, &mo, *alpha) : sn_error("out of memory");
    if (owned) image_free(&im);
    return r < 0 ? -1 : 0;
}

/* one layer: item idx[j] placed through (cx, cy, scale, th) over frame `canvas`, with shadow sh */
static int layer(const dataset *ds, const int *idx, float *const *alpha, int j, double cx, double cy, double scale,
                 double th, const matte_shadow *sh, image *canvas) {
    const int S = canvas->w;
    image src, fg = {.w = S, .h = S, .rgb = malloc((size_t)S * S * 3)};
    float *own = NULL, *a = malloc(sizeof(float) * (size_t)S * S);
    bool owned = false;
    int r = fg.rgb && a ? 0 : sn_error("out of memory");
    if (r == 0 && !alpha[j]) r = item_matte(ds, idx[j], &own);
    if (r == 0) r = ds_image(ds, idx[j], &src, &owned);
    if (r == 0) {
        double m[6];
        placement(src.w, src.h, S, cx, cy, scale, th, m);
        warp_in(&src, alpha[j] ? alpha[j] : own, m, S, fg.rgb, a);
        r = matte_composite(&fg, a, canvas, sh, canvas);
        if (owned) image_free(&src);
    }
    free(own);
    free(a);
    image_free(&fg);
    return r;
}

int shift_render(const dataset *ds, const int *idx, int n, float *const *alpha, int k, uint64_t seed, image *out) {
    const draws d = {seed, (uint64_t)k};
    image src;
    bool owned;
    if (ds_image(ds, idx[k], &src, &owned) < 0) return -1;
    const int S = src.w < src.h ? src.w : src.h;
    if (owned) image_free(&src);
    out->w = out->h = S;
    if (!(out->rgb = malloc((size_t)S * S * 3))) return sn_error("out of memory");
    int r = background(&d, S, out->rgb);
    const int n_clutter = n > 1 && U(&d, 6) < 0.3f ? 1 + (U(&d, 7) < 0.3f) : 0;
    for (int c = 0; r == 0 && c < n_clutter; c++) { /* centred near an edge: partly in frame */
        int j = (k + 1 + (int)(U(&d, 8 + 4 * c) * (n - 1))) % n;
        const double along = U(&d, 9 + 4 * c), side = U(&d, 10 + 4 * c), e = 0.05;
        double cx = side < 0.5 ? along : side < 0.75 ? e : 1 - e, cy = side < 0.5 ? (side < 0.25 ? e : 1 - e) : along;
        r = layer(ds, idx, alpha, j, cx, cy, 0.25 + 0.2 * U(&d, 11 + 4 * c), 2 * M_PI * U(&d, 16 + c), NULL, out);
    }
    const bool close = U(&d, 18) < 0.2f;
    const double scale = close ? 1.1 + 0.3 * U(&d, 19) : 0.6 + 0.35 * U(&d, 19), room = close ? 0.2 : (1 - scale) / 2;
    const double cx = 0.5 + room * (2 * U(&d, 23) - 1), cy = 0.5 + room * (2 * U(&d, 24) - 1);
    const matte_shadow sh = {.dx = S / 40.0f, .dy = S / 30.0f, .blur = 1 + S / 60, .opacity = 0.4f};
    const double th = U(&d, 26) < 0.3f ? 2 * M_PI * U(&d, 25) : (2 * U(&d, 25) - 1) * 20 * M_PI / 180;
    if (r == 0) r = layer(ds, idx, alpha, k, cx, cy, scale, th, &sh, out);
    if (r == 0 && U(&d, 27) < 0.5f) light(&d, S, out->rgb);
    if (r < 0) image_free(out);
    return r;
}

/* a new data set with the labels of ds's items idx[0..n), without images */
static dataset *labels_of(const dataset *ds, const int *idx, int n) {
    dataset *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    const int C = ds->n_classes;
    o->kind = ds->kind, o->n_classes = C, o->n_groups = ds->n_groups;
    o->items = calloc((size_t)(n ? n : 1), sizeof(ds_item));
    o->classes = calloc((size_t)C, sizeof(char *));
    o->group = malloc(sizeof(int) * (size_t)C);
    o->group_names = calloc((size_t)ds->n_groups, sizeof(char *));
    o->hot = malloc((size_t)(n ? n : 1) * C);
    o->root = ds_strdup(ds->root), o->layout = ds_strdup("shifted stress version"), o->task = ds_strdup(ds->task);
    bool ok = o->items && o->classes && o->group && o->group_names && o->hot && o->root && o->layout && o->task;
    if (ok) memcpy(o->group, ds->group, sizeof(int) * (size_t)C);
    for (int c = 0; ok && c < C; c++) ok = (o->classes[c] = ds_strdup(ds->classes[c])) != NULL;
    for (int g = 0; ok && g < ds->n_groups; g++) ok = (o->group_names[g] = ds_strdup(ds->group_names[g])) != NULL;
    for (int k = 0; ok && k < n; k++) {
        const ds_item *it = &ds->items[idx[k]];
        o->items[k] = (ds_item){.path = ds_strdup(it->path), .rel = ds_strdup(it->rel ? it->rel : it->path),
                                .label = it->label, .valid = 1};
        o->n_items = k + 1;
        memcpy(o->hot + (size_t)k * C, ds_hot(ds, idx[k]), (size_t)C);
        ok = o->items[k].path && o->items[k].rel;
    }
    if (!ok) {
        ds_free(o);
        return NULL;
    }
    o->max_side = ds->max_side;
    return o;
}

dataset *shift_dataset(const dataset *ds, const int *idx, int n, uint64_t seed) {
    dataset *o = labels_of(ds, idx, n);
    float **alpha = calloc((size_t)(n ? n : 1), sizeof(float *));
    int failed = 0;
    if (!o || !alpha) {
        sn_error("out of memory");
        failed = 1;
    }
    const int todo = failed ? 0 : n;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
    for (int k = 0; k < todo; k++) failed |= item_matte(ds, idx[k], &alpha[k]) < 0;
    const int todo2 = failed ? 0 : n;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
    for (int k = 0; k < todo2; k++) failed |= shift_render(ds, idx, n, alpha, k, seed, &o->items[k].cache) < 0;
    for (int k = 0; alpha && k < n; k++) free(alpha[k]);
    free(alpha);
    if (failed) {
        ds_free(o);
        return NULL;
    }
    for (int k = 0; k < n; k++) o->cache_bytes += (size_t)o->items[k].cache.w * o->items[k].cache.h * 3;
    o->n_cached = n;
    return o;
}
