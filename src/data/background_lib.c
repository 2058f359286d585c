/* background_lib.c - folders of background photos and GIMP patterns: listed when loaded, each
 * decoded at its first use (thread safe), and shared by every loader of the process.  See
 * background.h. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <webp/decode.h>
#include "core/error.h"
#include "core/file.h"
#include "data/background.h"
#include "data/dataset_build.h"
#include "data/lazy.h"

struct bg_library {
    int n, cap, max_side;
    char **paths;             /* [n] */
    bool *tile;               /* [n] a repeating pattern (GIMP .pat) */
    _Atomic(void *) *im;      /* [n] images decoded at first use */
    atomic_bool *bad;         /* [n] could not be decoded */
    pthread_mutex_t mu;       /* guards the failure count and message */
    int n_failed;
    char first_failure[512];
};

/* a GIMP pattern: big-endian header (size, version, width, height, bytes per pixel, "GPAT",
 * name), then width * height pixels of 1-4 bytes (grey, grey+alpha, RGB, RGBA) */
static int load_pat(const char *path, image *out) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, (size_t)64 << 20);
    if (!b) return -1;
#define BE32(p) ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3])
    uint32_t hs = n >= 24 ? BE32(b) : 0, w = n >= 24 ? BE32(b + 8) : 0, h = n >= 24 ? BE32(b + 12) : 0;
    uint32_t bpp = n >= 24 ? BE32(b + 16) : 0;
#undef BE32
    int r = 0;
    if (n < 24 || memcmp(b + 20, "GPAT", 4) != 0 || hs < 24) r = sn_error("%s: not a GIMP pattern (no GPAT header)", path);
    else if (bpp < 1 || bpp > 4 || w < 1 || h < 1 || w > 16384 || h > 16384 || hs + (size_t)w * h * bpp > n)
        r = sn_error("%s: GIMP pattern %ux%u with %u bytes per pixel does not fit the file (%zu bytes)", path, w, h,
                     bpp, n);
    else if (!(out->rgb = malloc((size_t)w * h * 3))) r = sn_error("out of memory reading %s", path);
    if (r == 0) {
        out->w = (int)w;
        out->h = (int)h;
        const uint8_t *p = b + hs;
        for (size_t i = 0; i < (size_t)w * h; i++, p += bpp)
            for (int c = 0; c < 3; c++) out->rgb[i * 3 + c] = bpp >= 3 ? p[c] : p[0];
    }
    free(b);
    return r;
}

static int load_webp(const char *path, int max_side, image *out) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, (size_t)256 << 20);
    if (!b) return -1;
    WebPDecoderConfig cfg;
    int w = 0, h = 0;
    if (!WebPInitDecoderConfig(&cfg) || WebPGetFeatures(b, n, &cfg.input) != VP8_STATUS_OK) {
        free(b);
        return sn_error("%s: not a readable WebP file", path);
    }
    w = cfg.input.width, h = cfg.input.height;
    int s = w < h ? w : h;
    if (max_side > 0 && s > max_side) {
        w = w == s ? max_side : (int)lround((double)w * max_side / s);
        h = h == s ? max_side : (int)lround((double)h * max_side / s);
        cfg.options.use_scaling = 1;
        cfg.options.scaled_width = w;
        cfg.options.scaled_height = h;
    }
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) {
        free(b);
        return sn_error("out of memory reading %s", path);
    }
    cfg.output.colorspace = MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = out->rgb;
    cfg.output.u.RGBA.stride = w * 3;
    cfg.output.u.RGBA.size = (size_t)w * h * 3;
    VP8StatusCode st = WebPDecode(b, n, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    free(b);
    if (st != VP8_STATUS_OK) {
        image_free(out);
        return sn_error("%s: WebP decoding failed (status %d)", path, (int)st);
    }
    out->w = w;
    out->h = h;
    return 0;
}

static bool has_ext(const char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

/* decodes file path (by its extension) shrunk to short side max_side (patterns as they are) */
static int decode(const char *path, bool pat, int max_side, image *out) {
    if (pat) return load_pat(path, out);
    if (has_ext(path, ".webp")) return load_webp(path, max_side, out);
    if (image_load(path, out) < 0) return -1;
    int s = out->w < out->h ? out->w : out->h;
    if (max_side <= 0 || s <= max_side) return 0;
    image small;
    int w = out->w == s ? max_side : (int)lround((double)out->w * max_side / s);
    int h = out->h == s ? max_side : (int)lround((double)out->h * max_side / s);
    int r = image_resize(out, w < 1 ? 1 : w, h < 1 ? 1 : h, &small);
    image_free(out);
    if (r == 0) *out = small;
    return r;
}

/* lists one file (an image or a pattern by its extension; others are not backgrounds) */
static int add_file(bg_library *lib, const char *path) {
    bool pat = has_ext(path, ".pat");
    if (!pat && !has_ext(path, ".webp") && !has_ext(path, ".png") && !has_ext(path, ".jpg") && !has_ext(path, ".jpeg"))
        return 0;
    if (lib->n == lib->cap) {
        int cap = lib->cap ? 2 * lib->cap : 64;
        char **np = realloc(lib->paths, sizeof(char *) * (size_t)cap);
        if (np) lib->paths = np;
        bool *nt = np ? realloc(lib->tile, sizeof(bool) * (size_t)cap) : NULL;
        if (nt) lib->tile = nt;
        if (!np || !nt) return sn_error("out of memory listing backgrounds");
        lib->cap = cap;
    }
    if (!(lib->paths[lib->n] = ds_strdup(path))) return sn_error("out of memory listing backgrounds");
    lib->tile[lib->n++] = pat;
    return 0;
}

/* every file under dir, recursively, in sorted order */
static int add_dir(bg_library *lib, const char *dir, int depth) {
    if (depth > 16) return 0;
    ds_strlist files = {0}, dirs = {0};
    int r = ds_list_dir(dir, false, &files);
    if (r == 0) r = ds_list_dir(dir, true, &dirs);
    for (int i = 0; r == 0 && i < files.n; i++) {
        char *p = ds_join(dir, files.v[i]);
        r = p ? add_file(lib, p) : sn_error("out of memory");
        free(p);
    }
    for (int i = 0; r == 0 && i < dirs.n; i++) {
        char *p = ds_join(dir, dirs.v[i]);
        r = p ? add_dir(lib, p, depth + 1) : sn_error("out of memory");
        free(p);
    }
    ds_sl_free(&files);
    ds_sl_free(&dirs);
    return r;
}

bg_library *bg_library_load(const char *dirs, int max_side, bool optional) {
    bg_library *lib = calloc(1, sizeof *lib);
    char *list = ds_strdup(dirs ? dirs : "");
    if (!lib || !list) {
        free(lib);
        free(list);
        sn_error("out of memory");
        return NULL;
    }
    pthread_mutex_init(&lib->mu, NULL);
    lib->max_side = max_side;
    int r = 0;
    for (char *save = NULL, *d = strtok_r(list, ",", &save); r == 0 && d; d = strtok_r(NULL, ",", &save)) {
        if (!*d) continue;
        if (!ds_is_dir(d)) {
            if (!optional) r = sn_error("--backgrounds: %s is not a folder", d);
            continue;
        }
        r = add_dir(lib, d, 0);
    }
    free(list);
    if (r == 0) {
        lib->im = calloc((size_t)(lib->n ? lib->n : 1), sizeof *lib->im);
        lib->bad = calloc((size_t)(lib->n ? lib->n : 1), sizeof *lib->bad);
        if (!lib->im || !lib->bad) r = sn_error("out of memory listing backgrounds");
        for (int i = 0; r == 0 && i < lib->n; i++) {
            atomic_init(&lib->im[i], NULL);
            atomic_init(&lib->bad[i], false);
        }
    }
    if (r < 0) {
        bg_library_free(lib);
        return NULL;
    }
    return lib;
}

int bg_library_size(const bg_library *lib) { return lib ? lib->n : 0; }
bool bg_library_tile(const bg_library *lib, int i) { return lib->tile[i]; }

const image *bg_library_image(bg_library *lib, int i) {
    image *im = atomic_load(&lib->im[i]);
    if (im || atomic_load(&lib->bad[i])) return im;
    im = malloc(sizeof *im);
    if (!im) return NULL;
    if (decode(lib->paths[i], lib->tile[i], lib->max_side, im) < 0) {
        free(im);
        if (!atomic_exchange(&lib->bad[i], true)) {
            pthread_mutex_lock(&lib->mu);
            if (lib->n_failed++ == 0) snprintf(lib->first_failure, sizeof lib->first_failure, "%s", sn_last_error());
            pthread_mutex_unlock(&lib->mu);
        }
        return NULL;
    }
    return data_publish_once(&lib->im[i], im, data_drop_image);
}

int bg_library_failed(bg_library *lib, char *first, size_t cap) {
    pthread_mutex_lock(&lib->mu);
    int n = lib->n_failed;
    if (first && cap) snprintf(first, cap, "%s", lib->first_failure);
    pthread_mutex_unlock(&lib->mu);
    return n;
}

void bg_library_free(bg_library *lib) {
    if (!lib) return;
    for (int i = 0; i < lib->n; i++) {
        free(lib->paths[i]);
        image *im = lib->im ? atomic_load(&lib->im[i]) : NULL;
        if (im) {
            image_free(im);
            free(im);
        }
    }
    free(lib->paths);
    free(lib->tile);
    free(lib->im);
    free(lib->bad);
    pthread_mutex_destroy(&lib->mu);
    free(lib);
}

/* the process's shared libraries, by (folders, max_side); kept until the process ends */
static struct shared_lib {
    char *dirs;
    int max_side;
    bg_library *lib;
    struct shared_lib *next;
} *g_shared;
static pthread_mutex_t g_shared_mu = PTHREAD_MUTEX_INITIALIZER;

bg_library *bg_library_shared(const char *dirs, int max_side, bool optional) {
    pthread_mutex_lock(&g_shared_mu);
    bg_library *lib = NULL;
    for (struct shared_lib *s = g_shared; s && !lib; s = s->next)
        if (s->max_side == max_side && !strcmp(s->dirs, dirs)) lib = s->lib;
    if (!lib && (lib = bg_library_load(dirs, max_side, optional)) != NULL) {
        struct shared_lib *s = malloc(sizeof *s);
        char *d = ds_strdup(dirs);
        if (!s || !d) {
            free(s);
            free(d);
            bg_library_free(lib);
            lib = NULL;
            sn_error("out of memory");
        } else {
            *s = (struct shared_lib){.dirs = d, .max_side = max_side, .lib = lib, .next = g_shared};
            g_shared = s;
        }
    }
    pthread_mutex_unlock(&g_shared_mu);
    return lib;
}
