/* background.c - procedural textures keyed by (seed, key), and crops of texture photos and GIMP
 * patterns loaded from folders.  See background.h. */
#include "data/background.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/lazy.h"

const char *const BG_FAMILY_NAMES[BG_FAMILIES] = {"gradient", "noise",  "stripes", "checks",
                                                  "weave",    "marble", "speckle", "dark"};

#define PI 3.14159265358979323846f

typedef struct {
    uint64_t seed, stream, base, lattice;
} keyed;

static keyed make_key(uint64_t seed, uint64_t key, uint64_t what) {
    keyed k = {.seed = seed, .stream = rng_mix(what) ^ 0x62672d00ull, .base = key * 64};
    k.lattice = rng_mix(seed ^ rng_mix(key + 0x9E37u * what));
    return k;
}
static inline float U(const keyed *k, int i) { return rng_uniform(k->seed, k->stream, k->base + (uint64_t)i); }

/* HSV (all in [0, 1]) to RGB in [0, 255] */
static void hsv(float h, float s, float v, float rgb[3]) {
    h = (h - floorf(h)) * 6;
    int i = (int)h;
    float f = h - (float)i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float r[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; c++) rgb[c] = 255 * r[i % 6][c];
}

/* a random colour: any hue, saturation and value from the given ranges (draws i, i+1, i+2) */
static void colour(const keyed *k, int i, float s_lo, float s_hi, float v_lo, float v_hi, float rgb[3]) {
    hsv(U(k, i), s_lo + U(k, i + 1) * (s_hi - s_lo), v_lo + U(k, i + 2) * (v_hi - v_lo), rgb);
}

/* value noise in [0, 1): lattice values hashed from (lattice key, octave, cell), smoothstep */
static float vnoise(uint64_t lat, int oct, float x, float y) {
    float fx = floorf(x), fy = floorf(y), tx = x - fx, ty = y - fy;
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    float v[4];
    for (int j = 0; j < 4; j++) {
        uint64_t h = rng_mix(lat + (uint64_t)oct * 0x632BE5ABull + (uint64_t)(ix + (j & 1)) * 0x9E3779B1ull +
                             (uint64_t)(iy + (j >> 1)) * 0x85EBCA77ull);
        v[j] = (float)(h >> 40) * (1.0f / 16777216.0f);
    }
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    return (v[0] + (v[1] - v[0]) * tx) * (1 - ty) + (v[2] + (v[3] - v[2]) * tx) * ty;
}

/* fractal sum of n octaves, normalised to [0, 1) */
static float fbm(uint64_t lat, int n, float x, float y) {
    float s = 0, a = 1, tot = 0;
    for (int o = 0; o < n; o++) {
        s += a * vnoise(lat, o, x, y);
        tot += a;
        a *= 0.5f;
        x *= 2.03f;
        y *= 2.03f;
    }
    return s / tot;
}

static inline void put(uint8_t *p, const float c0[3], const float c1[3], float t) {
    for (int c = 0; c < 3; c++) {
        float v = c0[c] + (c1[c] - c0[c]) * t;
        p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
    }
}

static inline float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* one family's value t in [0, 1] at (u, v) (coordinates in units of the long side), and its
 * sparkle or vein overrides through *extra (a second blend towards c2) */
typedef struct {
    int family;
    keyed k;
    float ca, sa, period, scale, duty, turb, density, cx, cy, radius;
    int octaves;
    bool radial;
} texture;

static void texture_init(texture *t, int family, uint64_t seed, uint64_t key) {
    t->family = family;
    t->k = make_key(seed, key, (uint64_t)family + 1);
    const keyed *k = &t->k;
    float th = U(k, 10) * 2 * PI;
    t->ca = cosf(th);
    t->sa = sinf(th);
    t->period = 0.02f + 0.2f * U(k, 11) * U(k, 11);
    t->scale = 2 + 14 * U(k, 12);
    t->duty = 0.3f + 0.4f * U(k, 13);
    t->turb = 1 + 5 * U(k, 14);
    t->density = 0.01f + 0.08f * U(k, 15);
    t->cx = U(k, 16);
    t->cy = U(k, 17);
    t->radius = 0.3f + 0.9f * U(k, 18);
    t->octaves = 2 + (int)(4 * U(k, 19));
    t->radial = U(k, 20) < 0.3f;
}

/* blend factor towards the second colour at (u, v); *spark (speckle, marble veins) in [0, 1] */
static float texture_at(const texture *t, float u, float v, float *spark) {
    const float a = u * t->ca + v * t->sa, b = -u * t->sa + v * t->ca;
    *spark = 0;
    switch (t->family) {
    case BG_GRADIENT:
        if (t->radial) return clamp01(hypotf(u - t->cx, v - t->cy) / t->radius);
        return clamp01(0.5f + a * 0.9f);
    case BG_NOISE: return clamp01((fbm(t->k.lattice, t->octaves, u * t->scale, v * t->scale) - 0.2f) * 1.6f);
    case BG_STRIPES: {
        float f = a / t->period - floorf(a / t->period);
        return clamp01((fabsf(f - 0.5f) - t->duty * 0.5f) * 12 + 0.5f);
    }
    case BG_CHECKS: {
        int i = (int)floorf(a / t->period), j = (int)floorf(b / t->period);
        return (float)((i + j) & 1);
    }
    case BG_WEAVE: { /* threads along a and b, over and under alternately, shaded across */
        float p = t->period * 0.25f + 0.006f, fa = a / p, fb = b / p;
        int i = (int)floorf(fa), j = (int)floorf(fb);
        bool warp = ((i + j) & 1) != 0;
        float across = warp ? fb - floorf(fb) : fa - floorf(fa);
        float shade = 0.75f + 0.25f * sinf(PI * across);
        float fib = vnoise(t->k.lattice, 7, warp ? fa * 0.5f : fa * 6, warp ? fb * 6 : fb * 0.5f);
        *spark = (1 - shade) * 1.5f + 0.2f * fib;
        return warp ? 1.0f : 0.0f;
    }
    case BG_MARBLE: {
        float n = fbm(t->k.lattice, 5, u * 3, v * 3);
        float s = fabsf(sinf((a / (t->period + 0.05f) + t->turb * n) * PI));
        *spark = powf(1 - s, 8);
        return clamp01(fbm(t->k.lattice, 3, u * 1.5f + 7, v * 1.5f + 7));
    }
    case BG_SPECKLE: {
        float base = fbm(t->k.lattice, 3, u * t->scale, v * t->scale);
        float r = vnoise(t->k.lattice, 9, u * 700, v * 700);
        *spark = r > 1 - t->density ? clamp01((r - (1 - t->density)) / t->density * 2) : 0;
        return base;
    }
    default: { /* BG_DARK: a soft light on a dark ground, with a little noise */
        float d = hypotf(u - t->cx, v - t->cy) / t->radius;
        return clamp01(expf(-d * d * 2) * 0.8f + 0.2f * fbm(t->k.lattice, 3, u * 4, v * 4));
    }
    }
}

void bg_procedural(int family, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb) {
    texture t;
    texture_init(&t, family, seed, key);
    const keyed *k = &t.k;
    float c0[3], c1[3], c2[3];
    if (family == BG_DARK) {
        colour(k, 0, 0, 0.8f, 0.0f, 0.12f, c0);
        colour(k, 3, 0, 0.8f, 0.15f, 0.55f, c1);
    } else {
        colour(k, 0, 0, 1, 0.1f, 1, c0);
        colour(k, 3, 0, 1, 0.1f, 1, c1);
    }
    if (family == BG_SPECKLE) hsv(U(k, 6), 0.6f * U(k, 7), 1, c2); /* glitter: bright */
    else if (family == BG_MARBLE) colour(k, 6, 0, 0.5f, 0, 0.6f, c2); /* veins */
    else if (family == BG_WEAVE) memset(c2, 0, sizeof c2); /* thread shading towards black */
    else memcpy(c2, c1, sizeof c2);
    const float inv = 1.0f / (float)(w > h ? w : h);
    float mix[3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float spark, tt = texture_at(&t, ((float)x + 0.5f) * inv, ((float)y + 0.5f) * inv, &spark);
            for (int c = 0; c < 3; c++) mix[c] = c0[c] + (c1[c] - c0[c]) * tt;
            put(rgb + ((size_t)y * w + x) * 3, mix, c2, clamp01(spark));
        }
}

/* a random crop of im into w x h (draws 1..5 of k): a square window of 35-100% of the short
 * side at a random position, flip and quarter turn; tiled: 0.5-2 source pixels per output pixel,
 * wrapping around */
static void crop_sample(const image *im, bool tile, const keyed *k, int w, int h, uint8_t *rgb) {
    const bool flip = U(k, 1) < 0.5f;
    const int quarter = (int)(U(k, 2) * 4) & 3, L = w > h ? w : h, iw = im->w, ih = im->h;
    const int s0 = iw < ih ? iw : ih;
    float side = tile ? (float)L * (0.5f + 1.5f * U(k, 3)) : (float)s0 * (0.35f + 0.65f * U(k, 3));
    float ox = U(k, 4) * (float)(tile ? iw : iw - side), oy = U(k, 5) * (float)(tile ? ih : ih - side);
    if (!tile && ox < 0) ox = 0;
    if (!tile && oy < 0) oy = 0;
    /* (x, y) -> (u, v) = ((x + 0.5) / L, (y + 0.5) / L), turned a quarter `quarter` times
     * ((u, v) -> (v, 1 - u): stays within [0,1]^2), flipped, then scaled into the window: an
     * affine map, so its coefficients come from three points */
    float m[3][2];
    for (int j = 0; j < 3; j++) {
        float u = ((float)(j == 1) + 0.5f) / (float)L, v = ((float)(j == 2) + 0.5f) / (float)L, t;
        for (int q = 0; q < quarter; q++) t = u, u = v, v = 1 - t;
        if (flip) u = 1 - u;
        m[j][0] = ox + u * side - 0.5f;
        m[j][1] = oy + v * side - 0.5f;
    }
    const float ax = m[1][0] - m[0][0], ay = m[1][1] - m[0][1], bx = m[2][0] - m[0][0], by = m[2][1] - m[0][1];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float sx = m[0][0] + ax * (float)x + bx * (float)y, sy = m[0][1] + ay * (float)x + by * (float)y;
            int x0, y0, x1, y1;
            if (sx >= 0 && sy >= 0 && sx < (float)(iw - 1) && sy < (float)(ih - 1)) {
                x0 = (int)sx, y0 = (int)sy, x1 = x0 + 1, y1 = y0 + 1;
            } else {
                x0 = (int)floorf(sx), y0 = (int)floorf(sy), x1 = x0 + 1, y1 = y0 + 1;
                if (tile) {
                    x0 %= iw, x1 %= iw, y0 %= ih, y1 %= ih;
                    x0 += x0 < 0 ? iw : 0, x1 += x1 < 0 ? iw : 0, y0 += y0 < 0 ? ih : 0, y1 += y1 < 0 ? ih : 0;
                } else {
                    x0 = x0 < 0 ? 0 : x0 >= iw ? iw - 1 : x0, x1 = x1 < 0 ? 0 : x1 >= iw ? iw - 1 : x1;
                    y0 = y0 < 0 ? 0 : y0 >= ih ? ih - 1 : y0, y1 = y1 < 0 ? 0 : y1 >= ih ? ih - 1 : y1;
                }
            }
            const float fx = sx - floorf(sx), fy = sy - floorf(sy);
            uint8_t *o = rgb + ((size_t)y * w + x) * 3;
            const uint8_t *r0 = im->rgb + (size_t)y0 * iw * 3, *r1 = im->rgb + (size_t)y1 * iw * 3;
            for (int c = 0; c < 3; c++) {
                float a = r0[x0 * 3 + c] * (1 - fx) + r0[x1 * 3 + c] * fx;
                float b = r1[x0 * 3 + c] * (1 - fx) + r1[x1 * 3 + c] * fx;
                o[c] = (uint8_t)(a + (b - a) * fy + 0.5f);
            }
        }
}

int bg_photo(bg_library *lib, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb) {
    keyed k = make_key(seed, key, 0x70686fu);
    const int n = bg_library_size(lib);
    int idx = (int)(U(&k, 0) * (float)n);
    if (idx >= n) idx = n - 1;
    const image *im = n > 0 ? bg_library_image(lib, idx) : NULL;
    if (!im) return -1;
    crop_sample(im, bg_library_tile(lib, idx), &k, w, h, rgb);
    return 0;
}

/* the procedural pool of one seed: BG_POOL textures of BG_POOL_SIDE pixels, texture t of family
 * t % BG_FAMILIES, each generated at its first use (lock free, as the library's images) */
typedef struct pool {
    uint64_t seed;
    _Atomic(void *) tex[BG_POOL];
    struct pool *next;
} pool;
static pool *g_pools;
static pthread_mutex_t g_pools_mu = PTHREAD_MUTEX_INITIALIZER;

const image *bg_pool_texture(uint64_t seed, int t) {
    pthread_mutex_lock(&g_pools_mu);
    pool *p = g_pools;
    while (p && p->seed != seed) p = p->next;
    if (!p && (p = calloc(1, sizeof *p)) != NULL) {
        p->seed = seed;
        for (int i = 0; i < BG_POOL; i++) atomic_init(&p->tex[i], NULL);
        p->next = g_pools;
        g_pools = p;
    }
    pthread_mutex_unlock(&g_pools_mu);
    if (!p) return NULL;
    image *im = atomic_load(&p->tex[t]);
    if (im) return im;
    if (!(im = malloc(sizeof *im)) || !(im->rgb = malloc((size_t)BG_POOL_SIDE * BG_POOL_SIDE * 3))) {
        free(im);
        return NULL;
    }
    im->w = im->h = BG_POOL_SIDE;
    bg_procedural(t % BG_FAMILIES, seed, 0xB6000000ull + (uint64_t)t, BG_POOL_SIDE, BG_POOL_SIDE, im->rgb);
    return data_publish_once(&p->tex[t], im, data_drop_image);
}

void bg_draw(bg_library *lib, float photo_p, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb) {
    keyed k = make_key(seed, key, 0x647261u);
    if (bg_library_size(lib) > 0 && U(&k, 0) < photo_p && bg_photo(lib, seed, key, w, h, rgb) == 0) return;
    int t = (int)(U(&k, 1) * BG_POOL);
    const image *im = bg_pool_texture(seed, t < BG_POOL ? t : BG_POOL - 1);
    keyed kc = make_key(seed, key, 0x706f6fu);
    if (im) crop_sample(im, false, &kc, w, h, rgb);
    else bg_procedural(t % BG_FAMILIES, seed, key, w, h, rgb); /* out of memory for the pool */
}
