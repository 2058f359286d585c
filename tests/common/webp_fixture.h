/* webp_fixture.h - WebP files for the tests, written at test time with libwebp's encoder.
 *
 * webp_encode: an RGB (channels 3) or RGBA (channels 4) image as a still WebP, lossless
 * (quality ignored) or lossy at quality 0..100; the bytes are malloc'd (free()), NULL on failure.
 * webp_animate: two frames, each a still WebP made by webp_encode of the canvas's full size, as
 * one animated WebP (VP8X + ANIM + two ANMF chunks, per the WebP container specification).
 * webp_write: bytes to a file; 0 or -1.
 */
#ifndef STYLENET_TEST_WEBP_FIXTURE_H
#define STYLENET_TEST_WEBP_FIXTURE_H
#include <stddef.h>
#include <stdint.h>

uint8_t *webp_encode(const uint8_t *px, int w, int h, int channels, int lossless, float quality, size_t *n);
uint8_t *webp_animate(const uint8_t *f0, size_t n0, const uint8_t *f1, size_t n1, int w, int h, size_t *n);
int webp_write(const char *path, const uint8_t *b, size_t n);
#endif
