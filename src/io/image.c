/* image.c - PNG (libpng), JPEG (libjpeg-turbo) and WebP (libwebp) decoding, resizing, normalisation. */
#include "io/image.h"
#include <stdbool.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include "core/error.h"
#include "core/file.h"

void image_free(image *im) {
    if (!im) return;
    free(im->rgb);
    im->rgb = NULL;
    im->w = im->h = 0;
}

/* RGBA (not premultiplied) -> RGB on white, in place, in sRGB values rounded: px[n * 4] becomes
 * px[n * 3] */
static void rgba_on_white(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned a = px[i * 4 + 3];
        for (int c = 0; c < 3; c++) px[i * 3 + c] = (uint8_t)((px[i * 4 + c] * a + 255 * (255 - a) + 127) / 255);
    }
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} png_src;

typedef struct {
    jmp_buf jump;
    char msg[256];
} png_err;

static void png_read_mem(png_structp png, png_bytep out, size_t len) {
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->pos) png_error(png, "file is truncated (data ends inside the image)");
    memcpy(out, s->p + s->pos, len);
    s->pos += len;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* e.g. a bad iCCP profile: not a reason to refuse the pixels */
}

/* Full libpng API rather than the simplified one: that one treats 16-bit files without gAMA as
 * linear light and composites alpha in linear light, so its 8-bit output differs from what
 * PIL (and so fastai/torchvision pipelines) produce.  Here every format is expanded to 8-bit
 * RGBA with exact 16->8 scaling, and alpha is composited on white in sRGB values. */
static int decode_png(const void *bytes, size_t n, const char *name, image *out) {
    png_src src = {bytes, n, 0};
    png_err err = {.msg = ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return sn_error("%s: out of memory starting the PNG decoder", name);
    }
    if (setjmp(err.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(px);
        free(rows);
        return sn_error("%s: bad PNG: %s", name, err.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, 30000, 30000);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((uint64_t)w * h > 100000000ull) png_error(png, "image larger than 100 Mpixel");
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_scale_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER); /* no-op when alpha is already there */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4) png_error(png, "unexpected row layout after conversion");
    px = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(png_bytep) * h);
    if (!px || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    rgba_on_white(px, (size_t)w * h);
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = px;
    return 0;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
} jpeg_err;

static void jpeg_fail(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_quiet(j_common_ptr c, int level) {
    /* warnings are not printed; premature end of data is remembered and reported after decoding */
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) ((jpeg_err *)c->err)->truncated = true;
}

static int decode_jpeg(const void *bytes, size_t n, const char *name, image *out) {
    struct jpeg_decompress_struct ci;
    jpeg_err err;
    uint8_t *volatile px = NULL;
    uint8_t *volatile row = NULL;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_fail;
    err.pub.emit_message = jpeg_quiet;
    err.truncated = false;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&ci);
        free(px);
        free(row);
        return sn_error("%s: bad JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, bytes, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    if (ci.image_width == 0 || ci.image_height == 0 || ci.image_width > 30000 || ci.image_height > 30000 ||
        (uint64_t)ci.image_width * ci.image_height > 100000000ull) {
        jpeg_destroy_decompress(&ci);
        return sn_error("%s: JPEG of %ux%u pixels is outside what stylenet accepts", name, ci.image_width,
                        ci.image_height);
    }
    bool cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&ci);
    int w = (int)ci.output_width, h = (int)ci.output_height, comps = ci.output_components;
    px = malloc((size_t)w * h * 3);
    row = malloc((size_t)w * comps);
    if (!px || !row) {
        jpeg_destroy_decompress(&ci);
        free(px);
        free(row);
        return sn_error("%s: out of memory for a %dx%d image", name, w, h);
    }
    while (ci.output_scanline < ci.output_height) {
        int y = (int)ci.output_scanline;
        JSAMPROW r = row;
        jpeg_read_scanlines(&ci, &r, 1);
        uint8_t *o = px + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            if (cmyk) { /* Adobe CMYK JPEGs store inverted values: R = C' * K' / 255 */
                int k = row[x * 4 + 3];
                for (int c = 0; c < 3; c++) o[x * 3 + c] = (uint8_t)((row[x * 4 + c] * k + 127) / 255);
            } else {
                memcpy(o + x * 3, row + x * 3, 3);
            }
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row);
    if (err.truncated) {
        free(px);
        return sn_error("%s: truncated JPEG (data ends before the image does)", name);
    }
    out->w = w;
    out->h = h;
    out->rgb = px;
    return 0;
}

/* ------------------------------------------------------------------ WebP */

static const char *webp_status(VP8StatusCode st) {
    switch (st) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt data";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "a feature libwebp does not support";
    case VP8_STATUS_NOT_ENOUGH_DATA:
    case VP8_STATUS_SUSPENDED: return "truncated (data ends before the image does)";
    default: return "cannot be decoded";
    }
}

/* the first frame of an animated WebP as RGBA on its full canvas (libwebpdemux composes it) */
static int decode_webp_anim(const void *bytes, size_t n, const char *name, uint8_t *px, int w, int h) {
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt)) return sn_error("%s: libwebp's animation decoder does not start", name);
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPData data = {bytes, n};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&data, &opt);
    WebPAnimInfo info;
    uint8_t *frame = NULL;
    int ts = 0;
    int ok = dec && WebPAnimDecoderGetInfo(dec, &info) && (int)info.canvas_width == w && (int)info.canvas_height == h &&
             info.frame_count > 0 && WebPAnimDecoderGetNext(dec, &frame, &ts) && frame;
    if (ok) memcpy(px, frame, (size_t)w * h * 4);
    WebPAnimDecoderDelete(dec);
    return ok ? 0 : sn_error("%s: bad animated WebP: its first frame cannot be decoded (corrupt or truncated)", name);
}

/* lossy (VP8) and lossless (VP8L) WebP, with or without alpha; of an animation, the first frame */
static int decode_webp(const void *bytes, size_t n, const char *name, image *out) {
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(bytes, n, &f);
    if (st != VP8_STATUS_OK) return sn_error("%s: bad WebP: %s", name, webp_status(st));
    if (f.width <= 0 || f.height <= 0 || (uint64_t)f.width * f.height > 100000000ull)
        return sn_error("%s: WebP of %dx%d pixels is outside what stylenet accepts", name, f.width, f.height);
    const int w = f.width, h = f.height;
    uint8_t *px = malloc((size_t)w * h * 4);
    if (!px) return sn_error("%s: out of memory for a %dx%d image", name, w, h);
    if (f.has_animation) {
        if (decode_webp_anim(bytes, n, name, px, w, h) < 0) {
            free(px);
            return -1;
        }
    } else {
        WebPDecoderConfig cfg;
        if (!WebPInitDecoderConfig(&cfg)) {
            free(px);
            return sn_error("%s: libwebp's decoder does not start", name);
        }
        cfg.output.colorspace = MODE_RGBA;
        cfg.output.is_external_memory = 1;
        cfg.output.u.RGBA.rgba = px;
        cfg.output.u.RGBA.stride = w * 4;
        cfg.output.u.RGBA.size = (size_t)w * h * 4;
        st = WebPDecode(bytes, n, &cfg);
        WebPFreeDecBuffer(&cfg.output);
        if (st != VP8_STATUS_OK) {
            free(px);
            return sn_error("%s: bad WebP: %s", name, webp_status(st));
        }
    }
    rgba_on_white(px, (size_t)w * h);
    out->w = w;
    out->h = h;
    out->rgb = px;
    return 0;
}

/* ------------------------------------------------------------------ entry points */

const char *image_format(const void *bytes, size_t n) {
    const uint8_t *b = bytes;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return "PNG";
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "WebP";
    return NULL;
}

int image_decode(const void *bytes, size_t n, const char *name, image *out) {
    const uint8_t *b = bytes;
    memset(out, 0, sizeof *out);
    if (n == 0) return sn_error("%s: empty file (0 bytes)", name);
    const char *fmt = image_format(bytes, n);
    if (fmt && fmt[0] == 'P') return decode_png(bytes, n, name, out);
    if (fmt && fmt[0] == 'J') return decode_jpeg(bytes, n, name, out);
    if (fmt && fmt[0] == 'W') return decode_webp(bytes, n, name, out);
    char head[3 * 8 + 1] = "";
    for (size_t i = 0; i < n && i < 8; i++) snprintf(head + 3 * i, 4, "%02x ", b[i]);
    return sn_error("%s: not a PNG, JPEG or WebP file (starts with %s)", name, head);
}

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

int image_peek_size(const void *bytes, size_t n, int *w, int *h) {
    const uint8_t *b = bytes;
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return WebPGetInfo(b, n, w, h) ? 0 : -1;
    if (n >= 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        uint32_t pw = be32(b + 16), ph = be32(b + 20);
        if (pw > INT32_MAX || ph > INT32_MAX) return -1;
        *w = (int)pw;
        *h = (int)ph;
        return 0;
    }
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return -1;
    size_t i = 2; /* JPEG: walk the marker segments up to the frame header (SOFn) */
    while (i + 4 <= n) {
        if (b[i] != 0xFF) return -1;
        uint8_t mk = b[i + 1];
        if (mk == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (mk == 0x01 || (mk >= 0xD0 && mk <= 0xD8)) { /* markers without a length */
            i += 2;
            continue;
        }
        if (mk == 0xD9 || mk == 0xDA) return -1; /* end of image or scan data before a frame header */
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (len < 2) return -1;
        if (mk >= 0xC0 && mk <= 0xCF && mk != 0xC4 && mk != 0xC8 && mk != 0xCC) {
            if (i + 9 > n) return -1;
            *h = b[i + 5] << 8 | b[i + 6];
            *w = b[i + 7] << 8 | b[i + 8];
            return 0;
        }
        i += 2 + len;
    }
    return -1;
}

int image_load(const char *path, image *out) {
    memset(out, 0, sizeof *out);
    size_t n;
    uint8_t *buf = sn_read_file(path, &n, (size_t)1 << 30);
    if (!buf) return -1;
    int r = image_decode(buf, n, path, out);
    free(buf);
    return r;
}

/* ------------------------------------------------------------------ resizing */

typedef struct {
    int *start, *count; /* per output pixel: first source pixel and how many */
    float *weight;      /* count weights per output pixel, stride = maxn */
    int maxn;
} filter1d;

/* triangle filter weights mapping n_in -> n_out (pixel centres aligned, as PIL) */
static int make_filter(int n_in, int n_out, filter1d *f) {
    double scale = (double)n_in / n_out;
    double support = scale > 1 ? scale : 1.0; /* triangle radius in source pixels */
    f->maxn = (int)ceil(support) * 2 + 1;
    f->start = malloc(sizeof(int) * n_out);
    f->count = malloc(sizeof(int) * n_out);
    f->weight = malloc(sizeof(float) * (size_t)n_out * f->maxn);
    if (!f->start || !f->count || !f->weight) return sn_error("out of memory resizing an image");
    for (int o = 0; o < n_out; o++) {
        double centre = (o + 0.5) * scale;
        int lo = (int)floor(centre - support), hi = (int)ceil(centre + support);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        double sum = 0;
        int cnt = 0;
        float *w = f->weight + (size_t)o * f->maxn;
        for (int i = lo; i < hi && cnt < f->maxn; i++, cnt++) {
            double d = fabs((i + 0.5 - centre) / support);
            w[cnt] = (float)(d < 1 ? 1 - d : 0);
            sum += w[cnt];
        }
        if (sum <= 0) { /* degenerate: nearest pixel */
            int i = (int)centre;
            if (i >= n_in) i = n_in - 1;
            lo = i;
            cnt = 1;
            w[0] = 1;
            sum = 1;
        }
        for (int k = 0; k < cnt; k++) w[k] = (float)(w[k] / sum);
        f->start[o] = lo;
        f->count[o] = cnt;
    }
    return 0;
}

static void free_filter(filter1d *f) {
    free(f->start);
    free(f->count);
    free(f->weight);
}

int image_resize(const image *src, int w, int h, image *dst) {
    memset(dst, 0, sizeof *dst);
    if (w <= 0 || h <= 0) return sn_error("resize to %dx%d", w, h);
    filter1d fx = {0}, fy = {0};
    float *tmp = malloc(sizeof(float) * (size_t)src->h * w * 3);
    uint8_t *out = malloc((size_t)w * h * 3);
    int r = -1;
    if (!tmp || !out) {
        sn_error("out of memory resizing an image to %dx%d", w, h);
        goto done;
    }
    if (make_filter(src->w, w, &fx) < 0 || make_filter(src->h, h, &fy) < 0) goto done;
    for (int y = 0; y < src->h; y++) /* horizontal pass into float */
        for (int x = 0; x < w; x++) {
            const float *wt = fx.weight + (size_t)x * fx.maxn;
            const uint8_t *s = src->rgb + ((size_t)y * src->w + fx.start[x]) * 3;
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < fx.count[x]; k++)
                for (int c = 0; c < 3; c++) acc[c] += wt[k] * s[k * 3 + c];
            for (int c = 0; c < 3; c++) tmp[((size_t)y * w + x) * 3 + c] = acc[c];
        }
    for (int y = 0; y < h; y++) /* vertical pass, rounded to 8 bits */
        for (int x = 0; x < w; x++) {
            const float *wt = fy.weight + (size_t)y * fy.maxn;
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < fy.count[y]; k++) {
                const float *s = tmp + ((size_t)(fy.start[y] + k) * w + x) * 3;
                for (int c = 0; c < 3; c++) acc[c] += wt[k] * s[c];
            }
            for (int c = 0; c < 3; c++) {
                float v = roundf(acc[c]);
                out[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    dst->w = w;
    dst->h = h;
    dst->rgb = out;
    out = NULL;
    r = 0;
done:
    free(tmp);
    free(out);
    free_filter(&fx);
    free_filter(&fy);
    return r;
}

int image_to_input(const image *im, int size, const float mean[3], const float std_[3], float *out) {
    int side = im->w < im->h ? im->w : im->h;
    image crop = {.w = side, .h = side, .rgb = malloc((size_t)side * side * 3)};
    if (!crop.rgb) return sn_error("out of memory cropping an image");
    int x0 = (im->w - side) / 2, y0 = (im->h - side) / 2;
    for (int y = 0; y < side; y++)
        memcpy(crop.rgb + (size_t)y * side * 3, im->rgb + ((size_t)(y + y0) * im->w + x0) * 3, (size_t)side * 3);
    image sized = crop;
    if (side != size) {
        int r = image_resize(&crop, size, size, &sized);
        image_free(&crop);
        if (r < 0) return -1;
    }
    for (size_t i = 0; i < (size_t)size * size; i++)
        for (int c = 0; c < 3; c++) out[i * 3 + c] = (sized.rgb[i * 3 + c] / 255.0f - mean[c]) / std_[c];
    image_free(&sized);
    return 0;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    jmp_buf jump;
    char msg[256];
} png_werr;

static void png_w_error(png_structp png, png_const_charp msg) {
    png_werr *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jump, 1);
}

/* im as PNG into f (sn_write_file_atomic's writer) */
static int png_write(FILE *f, void *ctx) {
    const image *im = ctx;
    png_werr err = {.msg = ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_w_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return sn_error("out of memory starting the PNG encoder");
    }
    if (setjmp(err.jump)) {
        png_destroy_write_struct(&png, &info);
        return ferror(f) ? 0 : sn_error("cannot write PNG: %s", err.msg); /* a failed write: the caller says why */
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++) png_write_row(png, im->rgb + (size_t)y * im->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int image_save_png(const image *im, const char *path) {
    if (!im || !im->rgb || im->w <= 0 || im->h <= 0) return sn_error("%s: no image to write", path);
    return sn_write_file_atomic(path, png_write, (void *)im);
}

/* 5x7 font for ASCII 32..126: five column bytes per glyph, bit 0 = top row */
static const uint8_t font5x7[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5F, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, {0x24, 0x2A, 0x7F, 0x2A, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1C, 0x22, 0x41, 0x00},
    {0x00, 0x41, 0x22, 0x1C, 0x00}, {0x08, 0x2A, 0x1C, 0x2A, 0x08}, {0x08, 0x08, 0x3E, 0x08, 0x08},
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3E, 0x51, 0x49, 0x45, 0x3E}, {0x00, 0x42, 0x7F, 0x40, 0x00},
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4B, 0x31}, {0x18, 0x14, 0x12, 0x7F, 0x10},
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3C, 0x4A, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1E}, {0x00, 0x36, 0x36, 0x00, 0x00},
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3E},
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, {0x7F, 0x49, 0x49, 0x49, 0x36}, {0x3E, 0x41, 0x41, 0x41, 0x22},
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, {0x7F, 0x49, 0x49, 0x49, 0x41}, {0x7F, 0x09, 0x09, 0x01, 0x01},
    {0x3E, 0x41, 0x41, 0x51, 0x32}, {0x7F, 0x08, 0x08, 0x08, 0x7F}, {0x00, 0x41, 0x7F, 0x41, 0x00},
    {0x20, 0x40, 0x41, 0x3F, 0x01}, {0x7F, 0x08, 0x14, 0x22, 0x41}, {0x7F, 0x40, 0x40, 0x40, 0x40},
    {0x7F, 0x02, 0x04, 0x02, 0x7F}, {0x7F, 0x04, 0x08, 0x10, 0x7F}, {0x3E, 0x41, 0x41, 0x41, 0x3E},
    {0x7F, 0x09, 0x09, 0x09, 0x06}, {0x3E, 0x41, 0x51, 0x21, 0x5E}, {0x7F, 0x09, 0x19, 0x29, 0x46},
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7F, 0x01, 0x01}, {0x3F, 0x40, 0x40, 0x40, 0x3F},
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, {0x7F, 0x20, 0x18, 0x20, 0x7F}, {0x63, 0x14, 0x08, 0x14, 0x63},
    {0x03, 0x04, 0x78, 0x04, 0x03}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7F, 0x41, 0x41, 0x00},
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7F, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},
    {0x7F, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7F},
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7E, 0x09, 0x01, 0x02}, {0x0C, 0x52, 0x52, 0x52, 0x3E},
    {0x7F, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7D, 0x40, 0x00}, {0x20, 0x40, 0x44, 0x3D, 0x00},
    {0x7F, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7F, 0x40, 0x00}, {0x7C, 0x04, 0x18, 0x04, 0x78},
    {0x7C, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0x7C, 0x14, 0x14, 0x14, 0x08},
    {0x08, 0x14, 0x14, 0x18, 0x7C}, {0x7C, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},
    {0x04, 0x3F, 0x44, 0x40, 0x20}, {0x3C, 0x40, 0x40, 0x20, 0x7C}, {0x1C, 0x20, 0x40, 0x20, 0x1C},
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x0C, 0x50, 0x50, 0x50, 0x3C},
    {0x44, 0x64, 0x54, 0x4C, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7F, 0x00, 0x00},
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x08, 0x04, 0x08, 0x10, 0x08},
};

int image_draw_text(image *im, int x, int y, const char *text, const uint8_t rgb[3], int scale) {
    if (scale < 1) scale = 1;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++, x += 6 * scale) {
        const uint8_t *g = font5x7[(*c >= 32 && *c <= 126 ? *c : '?') - 32];
        for (int col = 0; col < 5; col++)
            for (int row = 0; row < 7; row++) {
                if (!(g[col] >> row & 1)) continue;
                for (int dy = 0; dy < scale; dy++)
                    for (int dx = 0; dx < scale; dx++) {
                        int px = x + col * scale + dx, py = y + row * scale + dy;
                        if (px < 0 || py < 0 || px >= im->w || py >= im->h) continue;
                        memcpy(im->rgb + ((size_t)py * im->w + px) * 3, rgb, 3);
                    }
            }
    }
    return x;
}
