/* test_image.c - PNG/JPEG decoding against PIL's decode of the same bytes, resizing against PIL's
 * bilinear resize, and clear errors for bad files (tools/fixtures_image.py writes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
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
    check_bad("bad_text.png", "not a PNG or JPEG");
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
};
TEST_MAIN(cases)
