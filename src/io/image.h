/* image.h - decoding photos to 8-bit RGB, resizing, and turning them into network input.
 *
 * Contract
 * - image_load(path) / image_decode(bytes): the format is found from the bytes, not the name:
 *   PNG (every colour type and bit depth, palette, interlaced; libpng), JPEG (baseline and
 *   progressive, grey, RGB, CMYK/YCCK; libjpeg-turbo) and WebP (lossy and lossless, with or
 *   without alpha; libwebp; of an animated WebP the first frame, composed on its canvas by
 *   libwebpdemux).  Alpha is composited on white.  16-bit samples are reduced to 8.  At most
 *   100 Mpixel.  Failure: -1 and an error naming the file and the problem
 *   ("cat.png: not a PNG, JPEG or WebP file (starts with 3c 68 74 6d)", "x.jpg: truncated JPEG",
 *   "x.webp: bad WebP: truncated (data ends before the image does)").
 * - image_format(bytes) names the format by its signature ("PNG", "JPEG", "WebP"; NULL: none of
 *   them); image_peek_size reads the pixel size from the header alone (no decoding), for refusing
 *   an oversized image before its pixels are allocated.
 * - Pixels are RGB, row-major, 3 bytes per pixel (HWC), owned by the image (image_free).
 * - image_resize: separable triangle (bilinear) filter whose support widens with the scale
 *   factor when shrinking, so downscaling averages (anti-aliased, like PIL's BILINEAR).
 * - image_to_input: crops/resizes to size x size as the model wants and normalises each channel
 *   to (v/255 - mean[c]) / std[c] into float NHWC.
 */
#ifndef STYLENET_IMAGE_H
#define STYLENET_IMAGE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* h * w * 3 */
} image;

int image_load(const char *path, image *out);
int image_decode(const void *bytes, size_t n, const char *name, image *out);
/* "PNG", "JPEG" or "WebP" from the first bytes; NULL when they are none of these */
const char *image_format(const void *bytes, size_t n);
/* width and height from the PNG, JPEG or WebP header; -1 when no header is found */
int image_peek_size(const void *bytes, size_t n, int *w, int *h);
void image_free(image *im);
/* resamples src to w x h into dst (allocated) */
int image_resize(const image *src, int w, int h, image *dst);
/* centre square crop (side = min(w, h)) resized to size x size, normalised into out[size*size*3] */
int image_to_input(const image *im, int size, const float mean[3], const float std_[3], float *out);
/* writes im as an 8-bit RGB PNG (libpng), atomically (core/file.h); -1 with an error naming the path on failure */
int image_save_png(const image *im, const char *path);
/* draws ASCII text with a built-in 5x7 bitmap font (6x8 cell per character, scaled by `scale`)
 * into im at (x, y) in colour rgb, clipped to the image; characters outside 32..126 draw as '?'.
 * Returns the x after the last character. */
int image_draw_text(image *im, int x, int y, const char *text, const uint8_t rgb[3], int scale);
#endif
