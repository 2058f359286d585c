/* webp_fixture.c - WebP test files from libwebp's encoder (webp_fixture.h). */
#include "webp_fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

uint8_t *webp_encode(const uint8_t *px, int w, int h, int channels, int lossless, float quality, size_t *n) {
    uint8_t *enc = NULL;
    int stride = w * channels;
    if (channels == 4)
        *n = lossless ? WebPEncodeLosslessRGBA(px, w, h, stride, &enc) : WebPEncodeRGBA(px, w, h, stride, quality, &enc);
    else
        *n = lossless ? WebPEncodeLosslessRGB(px, w, h, stride, &enc) : WebPEncodeRGB(px, w, h, stride, quality, &enc);
    if (*n == 0) return NULL;
    uint8_t *out = malloc(*n); /* the caller frees with free(), not WebPFree() */
    if (out) memcpy(out, enc, *n);
    WebPFree(enc);
    return out;
}

static void le(uint8_t *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* an ANMF chunk at p holding frame f (a simple still WebP: its chunks after the 12-byte RIFF
 * header); returns the bytes written */
static size_t anmf(uint8_t *p, const uint8_t *f, size_t nf, int w, int h) {
    size_t body = nf - 12;
    memcpy(p, "ANMF", 4);
    le(p + 4, (uint32_t)(16 + body), 4);
    le(p + 8, 0, 3);          /* x / 2 */
    le(p + 11, 0, 3);         /* y / 2 */
    le(p + 14, (uint32_t)w - 1, 3);
    le(p + 17, (uint32_t)h - 1, 3);
    le(p + 20, 100, 3);       /* duration, ms */
    p[23] = 0x02;             /* no blending, no disposal */
    memcpy(p + 24, f + 12, body);
    return 24 + body;
}

uint8_t *webp_animate(const uint8_t *f0, size_t n0, const uint8_t *f1, size_t n1, int w, int h, size_t *n) {
    *n = 12 + 18 + 14 + (24 + n0 - 12) + (24 + n1 - 12);
    uint8_t *b = calloc(1, *n);
    if (!b) return NULL;
    memcpy(b, "RIFF", 4);
    le(b + 4, (uint32_t)(*n - 8), 4);
    memcpy(b + 8, "WEBP", 4);
    uint8_t *p = b + 12;
    memcpy(p, "VP8X", 4);
    le(p + 4, 10, 4);
    p[8] = 0x02 | 0x10;       /* animation, alpha */
    le(p + 12, (uint32_t)w - 1, 3);
    le(p + 15, (uint32_t)h - 1, 3);
    p += 18;
    memcpy(p, "ANIM", 4);
    le(p + 4, 6, 4);
    le(p + 8, 0xFFFFFFFFu, 4); /* background: white */
    le(p + 12, 0, 2);          /* loop forever */
    p += 14;
    p += anmf(p, f0, n0, w, h);
    anmf(p, f1, n1, w, h);
    return b;
}

int webp_write(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(b, 1, n, f);
    return fclose(f) == 0 && k == n ? 0 : -1;
}
