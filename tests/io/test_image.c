/* test_image.c - PNG/JPEG decoding against PIL's decode of the same bytes, resizing against PIL's
 * bilinear resize, and clear errors for bad files (tools/fixtures_image.py writes them); WebP
 * (lossless, lossy, alpha, animated, broken) against the pixels it was encoded from, with files
 * written at test time by libwebp's encoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <webp/decode.h>
#include "../common/check.h"
#include "../common/webp_fixture.h"
#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"

/* max |a - b| over n bytes */
static int max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void check_decode(st_file *ref, const char *name, int tol) {
    char path[4096];
    snprintf(path, sizeof path, "%s", fixture_path("images"));
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", name);
    image im;
    int r = image_load(path, &im);
    if (!check(r == 0, "decode %s (%s)", name, r ? sn_last_error() : "ok")) return;
    const st_tensor *t = st_find(ref, name);
    if (!check(t && t->ndim == 3 && t->shape[0] == im.h && t->shape[1] == im.w && t->shape[2] == 3,
               "%s: size %dx%d matches PIL's", name, im.w, im.h)) {
        image_free(&im);
        return;
    }
    int d = max_diff(im.rgb, t->data, t->nbytes);
    check(d <= tol, "%s: pixels equal PIL's within %d (max diff %d)", name, tol, d);
    image_free(&im);
}

static void check_bad(const char *name, const char *expect) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixture_path("images"), name);
    image im;
    int r = image_load(path, &im);
    const char *e = sn_last_error();
    check(r < 0 && strstr(e, name) && strstr(e, expect), "%s fails with a message naming it: %s", name, e);
}

/* PIL's decodes and resizes (tools/fixtures_image.py); NULL after a failed check */
static st_file *open_ref(void) {
    st_file *ref = st_open(fixture_path("images.safetensors"));
    check(ref != NULL, "open reference decodes (%s)", ref ? "" : sn_last_error());
    return ref;
}

/* lossless formats must match exactly (alpha composited on white in sRGB values, rounded) */
static void case_decode_png(void) {
    st_file *ref = open_ref();
    if (!ref) return;
    const char *exact[] = {"png_rgb8.png", "png_grey8.png", "png_palette.png", "png_interlaced.png",
                           "png_bw1.png", "png_grey16.png"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++) check_decode(ref, exact[i], 0);
    check_decode(ref, "png_rgba8.png", 0);
    check_decode(ref, "png_greyalpha.png", 0);
    st_close(ref);
}

/* JPEG: both use libjpeg-turbo's IDCT; PIL may pick a different upsampler, so allow 2 */
static void case_decode_jpeg(void) {
    st_file *ref = open_ref();
    if (!ref) return;
    check_decode(ref, "jpg_baseline.jpg", 2);
    check_decode(ref, "jpg_progressive.jpg", 2);
    check_decode(ref, "jpg_grey.jpg", 0);
    check_decode(ref, "jpg_cmyk.jpg", 2);
    check_decode(ref, "jpeg_named.png", 2);
    st_close(ref);
}

static void case_bad_files(void) {
    check_bad("bad_empty.png", "empty");
    check_bad("bad_text.png", "not a PNG, JPEG or WebP");
    check_bad("bad_trunc.png", "PNG");
    check_bad("bad_trunc.jpg", "truncated");
    check_bad("bad_header.png", "PNG");
    check_bad("does_not_exist.png", "cannot open");
}

/* resizing: PIL's antialiased bilinear; float rounding may differ by 1 */
static void case_resize(void) {
    st_file *ref = open_ref();
    if (!ref) return;
    image src;
    char path[4096];
    snprintf(path, sizeof path, "%s/png_rgb8.png", fixture_path("images"));
    if (check(image_load(path, &src) == 0, "load resize source")) {
        const char *names[] = {"resize_24x17", "resize_80x60"};
        int sizes[][2] = {{24, 17}, {80, 60}};
        for (int k = 0; k < 2; k++) {
            image dst;
            const st_tensor *t = st_find(ref, names[k]);
            if (check(t && image_resize(&src, sizes[k][0], sizes[k][1], &dst) == 0, "%s", names[k])) {
                int d = max_diff(dst.rgb, t->data, t->nbytes);
                check(d <= 1, "%s equals PIL's bilinear within 1 (max diff %d)", names[k], d);
                image_free(&dst);
            }
        }
        float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.5f, 0.5f, 0.5f};
        float *in = malloc(sizeof(float) * 32 * 32 * 3);
        check(in && image_to_input(&src, 32, mean, sd, in) == 0, "image_to_input 32x32");
        float lo = 1e9f, hi = -1e9f;
        for (int i = 0; in && i < 32 * 32 * 3; i++) {
            if (in[i] < lo) lo = in[i];
            if (in[i] > hi) hi = in[i];
        }
        check(lo >= -1.0f && hi <= 1.0f && hi > lo, "normalised to [-1, 1] (%.3f..%.3f)", lo, hi);
        free(in);
        image_free(&src);
    }
    st_close(ref);
}

/* ------------------------------------------------------------------ WebP */

/* a w x h test picture with `ch` channels: gradients, a hard edge, noise; alpha (ch 4) runs from
 * 0 to 255 across the columns */
static uint8_t *picture(int w, int h, int ch, unsigned seed) {
    uint8_t *p = malloc((size_t)w * h * ch);
    for (int y = 0; p && y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *o = p + ((size_t)y * w + x) * ch;
            seed = seed * 1103515245u + 12345u;
            o[0] = (uint8_t)(x * 255 / (w - 1));
            o[1] = (uint8_t)(y * 255 / (h - 1));
            o[2] = (uint8_t)((x > w / 2 ? 200 : 40) + (seed >> 16) % 16);
            if (ch == 4) o[3] = (uint8_t)(x * 255 / (w - 1));
        }
    return p;
}

/* RGBA on white, rounded, as the decoders composite */
static uint8_t *on_white(const uint8_t *rgba, size_t n) {
    uint8_t *o = malloc(n * 3);
    for (size_t i = 0; o && i < n; i++)
        for (int c = 0; c < 3; c++) {
            unsigned a = rgba[i * 4 + 3];
            o[i * 3 + c] = (uint8_t)((rgba[i * 4 + c] * a + 255 * (255 - a) + 127) / 255);
        }
    return o;
}

static char wdir[64];

/* a file of the test's temp folder (made on first use) */
static const char *wpath(const char *name) {
    static char p[160];
    if (!wdir[0]) {
        snprintf(wdir, sizeof wdir, "/tmp/stylenet_webp_XXXXXX");
        if (!mkdtemp(wdir)) wdir[0] = 0;
    }
    snprintf(p, sizeof p, "%s/%s", wdir, name);
    return p;
}

/* writes b[n] as name, loads it: the check names the case; im must then be freed */
static bool load_webp(const char *name, const uint8_t *b, size_t n, image *im) {
    memset(im, 0, sizeof *im);
    const char *path = wpath(name);
    int r = b && webp_write(path, b, n) == 0 ? image_load(path, im) : -1;
    bool ok = check(r == 0, "decode %s (%zu bytes): %s", name, n, r ? sn_last_error() : "ok");
    unlink(path);
    return ok;
}

static void check_pixels(const char *what, const image *im, const uint8_t *ref, int w, int h, int tol) {
    if (!check(im->w == w && im->h == h, "%s: %dx%d decoded (%dx%d encoded)", what, im->w, im->h, w, h)) return;
    int d = max_diff(im->rgb, ref, (size_t)w * h * 3);
    check(d <= tol, "%s: pixels equal the reference within %d (max diff %d)", what, tol, d);
}

/* lossless: the decoded pixels are the encoded ones; with alpha, those composited on white */
static void case_webp_lossless(void) {
    const int w = 37, h = 23;
    uint8_t *rgb = picture(w, h, 3, 1), *rgba = picture(w, h, 4, 2);
    size_t n;
    image im;
    uint8_t *b = webp_encode(rgb, w, h, 3, 1, 0, &n);
    if (load_webp("lossless.webp", b, n, &im)) check_pixels("lossless RGB WebP", &im, rgb, w, h, 0);
    image_free(&im);
    free(b);
    b = webp_encode(rgba, w, h, 4, 1, 0, &n);
    uint8_t *ref = on_white(rgba, (size_t)w * h);
    if (load_webp("lossless_alpha.webp", b, n, &im)) check_pixels("lossless RGBA WebP on white", &im, ref, w, h, 0);
    image_free(&im);
    check(b && !strcmp(image_format(b, n), "WebP"), "image_format names it WebP");
    int pw = 0, ph = 0, pr = b ? image_peek_size(b, n, &pw, &ph) : -1;
    check(pr == 0 && pw == w && ph == h, "image_peek_size reads %dx%d from the header", pw, ph);
    free(b);
    free(ref);
    free(rgb);
    free(rgba);
}

/* lossy: libwebp's own RGB(A) decode of the same bytes, exactly; near the source */
static void case_webp_lossy(void) {
    const int w = 64, h = 48;
    uint8_t *rgb = picture(w, h, 3, 3), *rgba = picture(w, h, 4, 4);
    size_t n;
    image im;
    uint8_t *b = webp_encode(rgb, w, h, 3, 0, 90, &n);
    if (load_webp("lossy.webp", b, n, &im)) {
        int rw, rh;
        uint8_t *ref = WebPDecodeRGB(b, n, &rw, &rh);
        if (check(ref != NULL, "libwebp decodes it too")) check_pixels("lossy WebP as libwebp's RGB", &im, ref, w, h, 0);
        WebPFree(ref);
        double sum = 0;
        for (size_t i = 0; im.w == w && i < (size_t)w * h * 3; i++) sum += abs((int)im.rgb[i] - (int)rgb[i]);
        check(sum / (w * h * 3) < 6, "quality 90: mean |decoded - source| %.2f < 6 levels", sum / (w * h * 3));
    }
    image_free(&im);
    free(b);
    b = webp_encode(rgba, w, h, 4, 0, 90, &n);
    if (load_webp("lossy_alpha.webp", b, n, &im)) {
        int rw, rh;
        uint8_t *ref4 = WebPDecodeRGBA(b, n, &rw, &rh);
        uint8_t *ref = ref4 ? on_white(ref4, (size_t)w * h) : NULL;
        if (check(ref != NULL, "libwebp decodes it too")) check_pixels("lossy RGBA WebP on white", &im, ref, w, h, 0);
        WebPFree(ref4);
        free(ref);
    }
    image_free(&im);
    free(b);
    free(rgb);
    free(rgba);
}

/* animated: the first frame, composed on the canvas */
static void case_webp_animated(void) {
    const int w = 20, h = 14;
    uint8_t *a = picture(w, h, 4, 5), *c = picture(w, h, 3, 6);
    for (int i = 0; i < w * h * 3; i++) c[i] = (uint8_t)(255 - c[i]);
    size_t na = 0, nc = 0, n = 0;
    uint8_t *fa = webp_encode(a, w, h, 4, 1, 0, &na), *fc = webp_encode(c, w, h, 3, 1, 0, &nc);
    uint8_t *b = fa && fc ? webp_animate(fa, na, fc, nc, w, h, &n) : NULL;
    uint8_t *ref = on_white(a, (size_t)w * h);
    image im;
    if (load_webp("animated.webp", b, n, &im)) check_pixels("animated WebP: its first frame on white", &im, ref, w, h, 0);
    image_free(&im);
    free(b);
    free(fa);
    free(fc);
    free(ref);
    free(a);
    free(c);
}

/* broken WebP files fail with a message naming the file and the problem */
static void check_bad_webp(const char *name, const uint8_t *b, size_t n, const char *expect) {
    const char *path = wpath(name);
    image im;
    int r = webp_write(path, b, n) == 0 ? image_load(path, &im) : 0;
    const char *e = sn_last_error();
    check(r < 0 && strstr(e, name) && strstr(e, expect), "%s fails naming the file and '%s': %s", name, expect, e);
    unlink(path);
}

static void case_webp_bad(void) {
    const int w = 40, h = 30;
    uint8_t *rgb = picture(w, h, 3, 7);
    size_t n, nl;
    uint8_t *lossless = webp_encode(rgb, w, h, 3, 1, 0, &nl), *lossy = webp_encode(rgb, w, h, 3, 0, 80, &n);
    if (check(lossless && lossy, "encoded the sources")) {
        check_bad_webp("half_lossless.webp", lossless, nl / 2, "truncated");
        check_bad_webp("half_lossy.webp", lossy, n / 2, "truncated");
        check_bad_webp("header_only.webp", lossy, 12, "bad WebP");
        uint8_t *c = malloc(nl);
        memcpy(c, lossless, nl);
        c[20] ^= 0xFF; /* the VP8L signature byte */
        check_bad_webp("bad_signature.webp", c, nl, "bad WebP");
        memcpy(c, lossless, nl);
        for (size_t i = 30; i < nl; i++) c[i] = (uint8_t)(i * 77);
        check_bad_webp("corrupt_lossless.webp", c, nl, "WebP");
        free(c);
        uint8_t anim[64] = "RIFF\x38\0\0\0WEBPVP8X\x0a\0\0\0\x12\0\0\0\x09\0\0\x09\0\0ANIM\x06\0\0\0";
        check_bad_webp("animated_no_frames.webp", anim, sizeof anim, "WebP");
    }
    free(lossless);
    free(lossy);
    free(rgb);
    if (wdir[0]) rmdir(wdir);
}

/* the real data set: RGBA PNGs with alpha 255 decode to 150x150 RGB */
static void case_style_photo(void) {
    image s;
    int r0 = image_load(shared_path("data/style/0_0_001.png"), &s);
    if (check(r0 == 0, "decode a Style photo (%s)", r0 ? sn_last_error() : "ok"))
        check(s.w == 150 && s.h == 150, "Style photo is 150x150 (%dx%d)", s.w, s.h);
    image_free(&s);
}

static const test_case cases[] = {
    {"decode_png", case_decode_png},
    {"decode_jpeg", case_decode_jpeg},
    {"bad_files", case_bad_files},
    {"resize", case_resize},
    {"style_photo", case_style_photo},
    {"webp_lossless", case_webp_lossless},
    {"webp_lossy", case_webp_lossy},
    {"webp_animated", case_webp_animated},
    {"webp_bad", case_webp_bad},
};
TEST_MAIN(cases)
