/* libFuzzer harness for io/image: image_decode on arbitrary bytes (PNG, JPEG and WebP via libpng,
 * libjpeg-turbo, libwebp and libwebpdemux), then the data pipeline's transforms on what decoded
 * (odd sizes such as 1xN reach the warp's edge paths).  Build and run: make fuzz (see the end of
 * the Makefile).  The WebP seeds (corpus/image/seed_*.webp: 16x12 lossy and lossless, each with
 * and without alpha, and a two-frame animation) were written by libwebp's encoder through
 * tests/common/webp_fixture.c. */
#include "core/error.h"
#include "data/augment.h"
#include "io/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                             \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "fuzz_image: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                           \
        }                                                                      \
    } while (0)

static volatile unsigned long sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    image im;
    if (image_decode(data, size, "fuzz.img", &im) < 0) {
        const char *e = sn_last_error();
        REQUIRE(e && strncmp(e, "fuzz.img: ", 10) == 0 && e[10]);
        REQUIRE(im.rgb == NULL && im.w == 0 && im.h == 0);
        return 0;
    }
    REQUIRE(im.w > 0 && im.h > 0 && im.rgb);
    unsigned long acc = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) acc += im.rgb[i];
    if (im.w <= 256 && im.h <= 256) {
        float out[12 * 12 * 3];
        REQUIRE(aug_center(&im, 12, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, out) == 0);
        aug_params p;
        aug_identity(&p);
        /* parameters from the input's last bytes: any angle, zoom 0.5..2.5, flip, crop */
        const uint8_t *t = data + size - (size >= 6 ? 6 : size);
        if (size >= 6) {
            p.angle = (float)t[0] * 360.0f / 255.0f - 180.0f;
            p.zoom = 0.5f + t[1] / 128.0f;
            p.zoom_x = t[2] / 255.0f;
            p.flip = t[3] & 1;
            p.crop_y = t[4] / 255.0f;
            p.brightness = 0.3f + t[5] / 640.0f;
        }
        aug_warp(&im, &p, 12, AUG_IMAGENET_MEAN, AUG_IMAGENET_STD, out);
        for (int i = 0; i < 12 * 12 * 3; i++) {
            REQUIRE(out[i] == out[i] && out[i] > -3 && out[i] < 3);
            acc += out[i] > 0;
        }
    }
    sink = acc;
    image_free(&im);
    return 0;
}
