/* matte.c - border-connected background flood fill, feathering, compositing with a drop shadow,
 * and the per-item matte cache.  See matte.h. */
#include "data/matte.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/lazy.h"

void matte_defaults(matte_opts *o) {
    *o = (matte_opts){.threshold = 0.1f, .feather = 2, .inset = 0.3f, .strong = 3, .min_border = 0.5f, .min_light = 0.5f,
                      .min_product = 0.01f, .max_product = 0.97f};
}

/* box blur of a[h*w] with radius r along rows then columns (edges clamped); tmp[max(w,h)] */
static void box_blur(float *a, int w, int h, int r, float *tmp) {
    if (r <= 0) return;
    const float inv = 1.0f / (float)(2 * r + 1);
    for (int pass = 0; pass < 2; pass++) {
        const int n = pass ? h : w, lines = pass ? w : h;
        const size_t step = pass ? (size_t)w : 1, lstep = pass ? 1 : (size_t)w;
        for (int l = 0; l < lines; l++) {
            float *p = a + (size_t)l * lstep;
            for (int i = 0; i < n; i++) tmp[i] = p[(size_t)i * step];
            float s = 0;
            for (int k = -r; k <= r; k++) s += tmp[k < 0 ? 0 : k >= n ? n - 1 : k];
            for (int i = 0; i < n; i++) {
                p[(size_t)i * step] = s * inv;
                int add = i + r + 1, sub = i - r;
                s += tmp[add >= n ? n - 1 : add] - tmp[sub < 0 ? 0 : sub];
            }
        }
    }
}

/* per-channel median of the border pixels of src */
static void border_colour(const image *src, uint8_t bg[3]) {
    int hist[3][256] = {{0}}, n = 0;
    const int w = src->w, h = src->h;
    for (int y = 0; y < h; y++) {
        int step = (y == 0 || y == h - 1) ? 1 : (w > 1 ? w - 1 : 1);
        for (int x = 0; x < w; x += step) {
            const uint8_t *p = src->rgb + ((size_t)y * w + x) * 3;
            for (int c = 0; c < 3; c++) hist[c][p[c]]++;
            n++;
        }
    }
    for (int c = 0; c < 3; c++) {
        int acc = 0, v = 0;
        while (v < 255 && (acc += hist[c][v]) * 2 < n) v++;
        bg[c] = (uint8_t)v;
    }
}

static inline int colour_dist(const uint8_t *p, const uint8_t bg[3]) {
    int d = 0;
    for (int c = 0; c < 3; c++) {
        int e = abs((int)p[c] - (int)bg[c]);
        if (e > d) d = e;
    }
    return d;
}

/* flood fill from the border through pixels within thr of bg: mask[i] = 0 background, 1 product.
 * Returns the share of border pixels that started the fill; -1 when out of memory */
static double flood_background(const image *src, const uint8_t bg[3], int thr, uint8_t *mask) {
    const int w = src->w, h = src->h;
    const size_t n = (size_t)w * h;
    int *queue = malloc(sizeof(int) * n);
    if (!queue) return -1;
    memset(mask, 1, n);
    size_t head = 0, tail = 0;
    long seeds = 0, border = 0;
#define PUSH(i)                                                                        \
    do {                                                                               \
        if (mask[i] && colour_dist(src->rgb + (size_t)(i) * 3, bg) <= thr) {           \
            mask[i] = 0;                                                               \
            queue[tail++] = (int)(i);                                                  \
        }                                                                              \
    } while (0)
    for (int y = 0; y < h; y++) {
        int step = (y == 0 || y == h - 1) ? 1 : (w > 1 ? w - 1 : 1);
        for (int x = 0; x < w; x += step) {
            size_t i = (size_t)y * w + x;
            border++;
            PUSH(i);
            seeds += !mask[i];
        }
    }
    while (head < tail) {
        int i = queue[head++], x = i % w, y = i / w;
        if (x > 0) PUSH(i - 1);
        if (x < w - 1) PUSH(i + 1);
        if (y > 0) PUSH(i - w);
        if (y < h - 1) PUSH(i + w);
    }
#undef PUSH
    free(queue);
    return border ? (double)seeds / (double)border : 0;
}

int matte_estimate(const image *src, const matte_opts *o, float *alpha) {
    const int w = src->w, h = src->h;
    const size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) alpha[i] = 1;
    if (w < 3 || h < 3) return 0;
    uint8_t bg[3];
    border_colour(src, bg);
    float luma = (0.299f * bg[0] + 0.587f * bg[1] + 0.114f * bg[2]) / 255.0f;
    if (luma < o->min_light) return 0;
    uint8_t *mask = malloc(n);
    float *tmp = malloc(sizeof(float) * (size_t)(w > h ? w : h));
    if (!mask || !tmp) {
        free(mask);
        free(tmp);
        return sn_error("out of memory for a %dx%d matte", w, h);
    }
    int thr = (int)lroundf(o->threshold * 255.0f);
    double share = flood_background(src, bg, thr, mask);
    if (share < 0) {
        free(mask);
        free(tmp);
        return sn_error("out of memory for a %dx%d matte", w, h);
    }
    size_t fg = 0;
    for (size_t i = 0; i < n; i++) fg += mask[i];
    double frac = (double)fg / (double)n;
    int found = share >= o->min_border && frac >= o->min_product && frac <= o->max_product;
    if (found) {
        for (size_t i = 0; i < n; i++) alpha[i] = mask[i];
        box_blur(alpha, w, h, o->feather, tmp);
        box_blur(alpha, w, h, o->feather, tmp);
        const float lo = o->inset < 0 ? 0 : o->inset > 0.99f ? 0.99f : o->inset, s = 1 / (1 - lo);
        /* product pixels far from the background colour stay opaque (thin chains, hard edges) */
        const float strong = o->strong > 1 ? (o->strong - 1) * (float)thr : 0;
        for (size_t i = 0; i < n; i++) {
            float a = (alpha[i] - lo) * s; /* the running sums leave ~1e-7: snap the ends */
            if (!mask[i]) a = 0; /* the background stays background: no halo */
            else if (strong > 0) {
                float d = ((float)colour_dist(src->rgb + i * 3, bg) - (float)thr) / strong;
                a = d > a ? d : a;
            }
            alpha[i] = a < 1e-5f ? 0 : a > 1 - 1e-5f ? 1 : a;
        }
    }
    free(mask);
    free(tmp);
    return found;
}

int matte_composite(const image *fg, const float *alpha, const image *bg, const matte_shadow *sh, image *out) {
    const int w = fg->w, h = fg->h;
    const size_t n = (size_t)w * h;
    if (bg->w != w || bg->h != h) return sn_error("matte_composite: background %dx%d, product %dx%d", bg->w, bg->h, w, h);
    float *shadow = NULL;
    if (sh && sh->opacity > 0) {
        shadow = malloc(sizeof(float) * n);
        float *tmp = malloc(sizeof(float) * (size_t)(w > h ? w : h));
        if (!shadow || !tmp) {
            free(shadow);
            free(tmp);
            return sn_error("out of memory for a %dx%d shadow", w, h);
        }
        const int dx = (int)lroundf(sh->dx), dy = (int)lroundf(sh->dy);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sx = x - dx, sy = y - dy;
                shadow[(size_t)y * w + x] = sx >= 0 && sy >= 0 && sx < w && sy < h ? alpha[(size_t)sy * w + sx] : 0;
            }
        box_blur(shadow, w, h, sh->blur, tmp);
        box_blur(shadow, w, h, sh->blur, tmp);
        free(tmp);
    }
    if (!out->rgb) {
        out->rgb = malloc(n * 3);
        if (!out->rgb) {
            free(shadow);
            return sn_error("out of memory for a %dx%d composite", w, h);
        }
    }
    out->w = w;
    out->h = h;
    for (size_t i = 0; i < n; i++) {
        const float a = alpha[i], dark = shadow ? 1 - sh->opacity * shadow[i] : 1;
        for (int c = 0; c < 3; c++) {
            float v = a * fg->rgb[i * 3 + c] + (1 - a) * dark * bg->rgb[i * 3 + c];
            out->rgb[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    }
    free(shadow);
    return 0;
}

/* ---------------------------------------------------------------- matte maps and the cache */

int matte_map_build(const image *src, const matte_opts *o, matte_map *m) {
    memset(m, 0, sizeof *m);
    const int w = src->w, h = src->h, F = MATTE_SHADOW_F;
    const size_t n = (size_t)w * h;
    float *a = malloc(sizeof(float) * n);
    if (!a) return sn_error("out of memory for a %dx%d matte", w, h);
    int r = matte_estimate(src, o, a);
    if (r < 0) {
        free(a);
        return -1;
    }
    m->w = w;
    m->h = h;
    m->ok = r == 1;
    m->sw = (w + F - 1) / F;
    m->sh = (h + F - 1) / F;
    m->alpha = malloc(n);
    m->shadow = malloc((size_t)m->sw * m->sh);
    float *s = calloc((size_t)m->sw * m->sh, sizeof(float));
    float *tmp = malloc(sizeof(float) * (size_t)(m->sw > m->sh ? m->sw : m->sh));
    if (!m->alpha || !m->shadow || !s || !tmp) {
        free(a);
        free(s);
        free(tmp);
        matte_map_free(m);
        return sn_error("out of memory for a %dx%d matte", w, h);
    }
    for (size_t i = 0; i < n; i++) m->alpha[i] = (uint8_t)lroundf(a[i] * 255.0f);
    /* the shadow: alpha averaged over F x F cells, then blurred at that resolution */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) s[(size_t)(y / F) * m->sw + x / F] += a[(size_t)y * w + x] * (1.0f / (F * F));
    box_blur(s, m->sw, m->sh, 2, tmp);
    box_blur(s, m->sw, m->sh, 2, tmp);
    for (size_t i = 0; i < (size_t)m->sw * m->sh; i++) {
        float v = s[i] * 255.0f;
        m->shadow[i] = (uint8_t)(v > 255 ? 255 : v + 0.5f);
    }
    free(a);
    free(s);
    free(tmp);
    return 0;
}

void matte_map_free(matte_map *m) {
    free(m->alpha);
    free(m->shadow);
    memset(m, 0, sizeof *m);
}

struct matte_cache {
    int n;
    matte_opts o;
    _Atomic(void *) *maps;
};

matte_cache *matte_cache_create(int n_items, const matte_opts *o) {
    matte_cache *c = calloc(1, sizeof *c);
    if (c) c->maps = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof *c->maps);
    if (!c || !c->maps) {
        free(c);
        sn_error("out of memory for the mattes of %d images", n_items);
        return NULL;
    }
    c->n = n_items;
    if (o) c->o = *o;
    else matte_defaults(&c->o);
    for (int i = 0; i < n_items; i++) atomic_init(&c->maps[i], NULL);
    return c;
}

static void drop_map(void *m) {
    matte_map_free(m);
    free(m);
}

const matte_map *matte_cache_get(matte_cache *c, int i, const image *src) {
    if (i < 0 || i >= c->n) {
        sn_error("matte cache: item %d out of range (%d items)", i, c->n);
        return NULL;
    }
    matte_map *m = atomic_load(&c->maps[i]);
    if (m) return m;
    m = malloc(sizeof *m);
    if (!m) {
        sn_error("out of memory for a matte");
        return NULL;
    }
    if (matte_map_build(src, &c->o, m) < 0) {
        free(m);
        return NULL;
    }
    return data_publish_once(&c->maps[i], m, drop_map);
}

void matte_cache_free(matte_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        matte_map *m = atomic_load(&c->maps[i]);
        if (m) {
            matte_map_free(m);
            free(m);
        }
    }
    free(c->maps);
    free(c);
}
