/* augment_shift.c - the shift augmentations: their keyed draws, the one-pass render (homography,
 * matte and new background, colour matrix) and the passes that follow it when drawn (blur, JPEG,
 * erasing, normalisation).  See augment.h. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h> /* after stdio.h: it uses FILE and size_t */
#include "core/error.h"
#include "core/rng.h"
#include "data/augment_internal.h"
#include "data/background.h"
#include "data/matte.h"

#define PI 3.14159265358979323846

void aug_shift_preset(aug_opts *o) {
    o->bg_p = 0.5f;
    o->shadow_p = 0.5f;
    o->rotate_full_p = 0.1f;
    o->rrc_p = 0.3f;
    o->persp_p = 0.2f;
    o->color_p = 0.5f;
    o->blur_p = 0.1f;
    o->jpeg_p = 0.2f;
    o->erase_p = 0.1f;
    o->cutmix_p = 0.1f;
}

void aug_shift_off(aug_opts *o) {
    o->bg_p = o->shadow_p = o->rotate_full_p = o->rrc_p = o->persp_p = o->color_p = 0;
    o->blur_p = o->jpeg_p = o->erase_p = o->cutmix_p = 0;
}

bool aug_shift_enabled(const aug_opts *o) {
    return o->bg_p > 0 || o->rotate_full_p > 0 || o->rrc_p > 0 || o->persp_p > 0 || o->color_p > 0 || o->blur_p > 0 ||
           o->jpeg_p > 0 || o->erase_p > 0 || o->cutmix_p > 0;
}

/* appends " --name value" to buf */
static void put_flag(char *buf, size_t cap, const char *name, double v) {
    size_t n = strlen(buf);
    if (n < cap) snprintf(buf + n, cap - n, "%s--%s %g", n ? " " : "", name, v);
}

void aug_shift_describe(const aug_opts *o, char *buf, size_t cap) {
    if (cap) buf[0] = 0;
    const struct {
        const char *p_name;
        float p;
        const char *s_name[3];
        float s[3];
    } t[] = {
        {"bg-p", o->bg_p, {"bg-photo-p", "bg-min-scale", "shadow-p"}, {o->bg_photo_p, o->bg_min_scale, o->shadow_p}},
        {"rotate-full-p", o->rotate_full_p, {0}, {0}},
        {"rrc-p", o->rrc_p, {"rrc-min-scale", "rrc-ratio"}, {o->rrc_min_scale, o->rrc_ratio}},
        {"persp-p", o->persp_p, {"persp"}, {o->persp}},
        {"color-p", o->color_p, {"hue", "saturation", "contrast"}, {o->hue, o->saturation, o->contrast}},
        {"blur-p", o->blur_p, {"blur-sigma"}, {o->blur_sigma}},
        {"jpeg-p", o->jpeg_p, {"jpeg-min-q"}, {(float)o->jpeg_min_q}},
        {"erase-p", o->erase_p, {"erase-max"}, {o->erase_max}},
        {"cutmix-p", o->cutmix_p, {0}, {0}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!(t[i].p > 0)) continue;
        put_flag(buf, cap, t[i].p_name, t[i].p);
        for (int k = 0; k < 3 && t[i].s_name[k]; k++) put_flag(buf, cap, t[i].s_name[k], t[i].s[k]);
        if (i == 0 && o->bg_dirs) {
            size_t n = strlen(buf);
            if (n < cap) snprintf(buf + n, cap - n, " --backgrounds %s", o->bg_dirs);
        }
    }
}

/* a box of area share in [lo, hi] and aspect log-uniform in [1/2, 2], anywhere inside the unit
 * square (draws k .. k+3) */
static void draw_box(uint64_t seed, uint64_t stream, uint64_t base, float lo, float hi, float box[4]) {
    float area = lo + rng_uniform(seed, stream, base) * (hi - lo);
    float r = expf((2 * rng_uniform(seed, stream, base + 1) - 1) * 0.6931472f);
    float w = sqrtf(area * r), h = sqrtf(area / r);
    if (w > 1) w = 1;
    if (h > 1) h = 1;
    box[0] = rng_uniform(seed, stream, base + 2) * (1 - w);
    box[1] = rng_uniform(seed, stream, base + 3) * (1 - h);
    box[2] = w;
    box[3] = h;
}

void aug_draw_shift(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p, aug_shift *s) {
    memset(s, 0, sizeof *s);
    s->aspect = 1;
    s->bg_scale = 1;
    s->hue = 0, s->sat = 1, s->con = 1;
    if (!aug_shift_enabled(o)) return;
    const uint64_t stream = rng_mix(epoch ^ 0x5817u) ^ 0x73686966ull, base = item * 64;
#define U(k) rng_uniform(seed, stream, base + (k))
    s->key = rng_u64(seed, stream, base + 1);
    if (o->bg_p > 0 && U(0) < o->bg_p) {
        s->bg = true;
        float lo = o->bg_min_scale > 0 && o->bg_min_scale < 1 ? o->bg_min_scale : 1;
        s->bg_scale = lo + U(2) * (1 - lo);
        if (o->shadow_p > 0 && U(3) < o->shadow_p) {
            s->shadow = 0.3f + 0.4f * U(4);
            s->shadow_dx = (2 * U(5) - 1) * 0.06f;
            s->shadow_dy = 0.02f + 0.05f * U(6);
        }
    }
    if (o->rotate_full_p > 0 && U(7) < o->rotate_full_p) p->angle = 360 * U(8) - 180;
    if (o->rrc_p > 0 && U(9) < o->rrc_p) {
        float lo = o->rrc_min_scale > 0 && o->rrc_min_scale < 1 ? o->rrc_min_scale : 1;
        float area = lo + U(10) * (1 - lo);
        p->zoom = 1 / sqrtf(area);
        p->zoom_x = U(11);
        p->zoom_y = U(12);
        if (o->rrc_ratio > 1) s->aspect = expf((2 * U(13) - 1) * logf(o->rrc_ratio));
    }
    if (o->persp_p > 0 && o->persp > 0 && U(14) < o->persp_p) {
        s->persp_on = true;
        for (int k = 0; k < 8; k++) s->persp[k] = (2 * U(15 + k) - 1) * o->persp;
    }
    if (o->color_p > 0 && U(23) < o->color_p) {
        s->color = true;
        s->hue = (2 * U(24) - 1) * o->hue;
        s->sat = 1 + (2 * U(25) - 1) * o->saturation;
        s->con = 1 + (2 * U(26) - 1) * o->contrast;
    }
    if (o->blur_p > 0 && o->blur_sigma > 0.3f && U(27) < o->blur_p) s->blur = 0.3f + U(28) * (o->blur_sigma - 0.3f);
    if (o->jpeg_p > 0 && U(29) < o->jpeg_p) {
        int lo = o->jpeg_min_q < 1 ? 1 : o->jpeg_min_q > 95 ? 95 : o->jpeg_min_q;
        s->jpeg_q = lo + (int)(U(30) * (float)(95 - lo + 1));
        if (s->jpeg_q > 95) s->jpeg_q = 95;
    }
    if (o->erase_p > 0 && o->erase_max > 0 && U(31) < o->erase_p) {
        s->erase = true;
        draw_box(seed, stream, base + 32, 0.02f, o->erase_max, s->erase_box);
    }
    if (o->cutmix_p > 0 && U(36) < o->cutmix_p) {
        s->cutmix = true;
        s->cutmix_pick = U(37);
        draw_box(seed, stream, base + 38, 0.1f, 0.5f, s->cutmix_box);
    }
#undef U
    s->active = true;
}

/* ---------------------------------------------------------------- the map output -> source */

static void mat3_mul(const double a[9], const double b[9], double out[9]) {
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    memcpy(out, t, sizeof t);
}

/* the projective map taking the corners (-1,-1), (1,-1), (-1,1), (1,1) to themselves moved by d:
 * the 8 x 8 system of the four correspondences, Gaussian elimination with partial pivoting */
static void perspective(const float d[8], double H[9]) {
    const double cu[4] = {-1, 1, -1, 1}, cv[4] = {-1, -1, 1, 1};
    double A[8][9];
    for (int k = 0; k < 4; k++) {
        double u = cu[k], v = cv[k], X = u + d[2 * k], Y = v + d[2 * k + 1];
        double r0[9] = {u, v, 1, 0, 0, 0, -u * X, -v * X, X}, r1[9] = {0, 0, 0, u, v, 1, -u * Y, -v * Y, Y};
        memcpy(A[2 * k], r0, sizeof r0);
        memcpy(A[2 * k + 1], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int piv = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        for (int j = 0; j < 9; j++) {
            double t = A[c][j];
            A[c][j] = A[piv][j];
            A[piv][j] = t;
        }
        for (int r = 0; r < 8; r++) {
            if (r == c || A[c][c] == 0) continue;
            double f = A[r][c] / A[c][c];
            for (int j = c; j < 9; j++) A[r][j] -= f * A[c][j];
        }
    }
    for (int k = 0; k < 8; k++) H[k] = A[k][k] != 0 ? A[k][8] / A[k][k] : (k == 0 || k == 4);
    H[8] = 1;
}

/* output pixel index -> source pixel index, as a homography (aug_matrix's affine map, stretched
 * by the crop's aspect and scaled by the product scale, after the perspective distortion) */
static void shift_map(const aug_params *p, const aug_shift *s, float scale, int w, int h, int S, double H[9]) {
    const double a = 2.0 / S, b = 1.0 / S - 1, f = p->flip ? -1 : 1;
    const double ar = sqrt(s->aspect), iz = 1.0 / (p->zoom * scale), zx = iz * ar, zy = iz / ar;
    const double tzx = (2 * p->zoom_x - 1) * (1 - zx), tzy = (2 * p->zoom_y - 1) * (1 - zy);
    const double th = p->angle * PI / 180, c = cos(th), sn = sin(th);
    const double mm = w < h ? w : h, ox = p->crop_x * (w - mm), oy = p->crop_y * (h - mm), hh = mm / 2;
    double N[9] = {a, 0, b, 0, a, b, 0, 0, 1}, P[9];
    double T[9] = {c * zx * f, -sn * zy, c * tzx - sn * tzy, sn * zx * f, c * zy, sn * tzx + c * tzy, 0, 0, 1};
    double C[9] = {hh, 0, ox + hh - 0.5, 0, hh, oy + hh - 0.5, 0, 0, 1};
    if (s->persp_on) {
        perspective(s->persp, P);
        mat3_mul(P, N, N);
    }
    mat3_mul(T, N, H);
    mat3_mul(C, H, H);
}

/* ---------------------------------------------------------------- the render */

/* bilinear sample of bytes with taps outside the image as 0 */
static inline float sample_zero(const uint8_t *a, int w, int h, float x, float y) {
    if (x <= -1 || y <= -1 || x >= w || y >= h) return 0;
    if (x >= 0 && y >= 0 && x < (float)(w - 1) && y < (float)(h - 1)) { /* all four taps inside */
        const int x0 = (int)x, y0 = (int)y;
        const float fx = x - (float)x0, fy = y - (float)y0;
        const uint8_t *p = a + (size_t)y0 * w + x0;
        return (1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[w] + fx * p[w + 1]);
    }
    int x0 = (int)floorf(x), y0 = (int)floorf(y);
    float fx = x - (float)x0, fy = y - (float)y0, v = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int xx = x0 + i, yy = y0 + j;
            if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
            v += (i ? fx : 1 - fx) * (j ? fy : 1 - fy) * a[(size_t)yy * w + xx];
        }
    return v;
}

/* the colour jitter as v' = M v + off on values in [0, 1] */
static void colour_matrix(const aug_shift *s, float M[9], float off[3]) {
    const double th = 2 * PI * s->hue, c = cos(th), sn = sin(th), k = 1 / sqrt(3.0);
    double R[9], Sm[9], A[9];
    const double kx[9] = {0, -k, k, k, 0, -k, -k, k, 0}; /* cross-product matrix of k (1,1,1) */
    for (int i = 0; i < 9; i++) R[i] = (i % 4 == 0 ? c : 0) + (1 - c) * k * k + sn * kx[i];
    const double lw[3] = {0.299, 0.587, 0.114};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) Sm[i * 3 + j] = (i == j ? s->sat : 0) + (1 - s->sat) * lw[j];
    mat3_mul(Sm, R, A);
    for (int i = 0; i < 9; i++) M[i] = (float)(s->con * A[i]);
    for (int i = 0; i < 3; i++) off[i] = (float)((1 - s->con) * 0.5);
}

/* one output row y: product (reflection padding) over the background through the matte */
typedef struct {
    const image *src;
    const matte_map *m;
    const uint8_t *bg;     /* S x S x 3, or NULL */
    float lut[3][256];     /* lit values in [0, 1] */
    double H[9];
    float shadow, sdx, sdy; /* opacity; offset in source pixels */
    bool color;
    float M[9], off[3];
    int S;
} render_job;

static void render_row(const render_job *j, int y, float *o) {
    const image *src = j->src;
    const int w = src->w, h = src->h, S = j->S, F = MATTE_SHADOW_F;
    const size_t stride = (size_t)w * 3;
    const bool affine = j->H[6] == 0 && j->H[7] == 0;
    const float h0 = (float)j->H[0], h3 = (float)j->H[3], h6 = (float)j->H[6];
    const float b0 = (float)(j->H[1] * y + j->H[2]), b1 = (float)(j->H[4] * y + j->H[5]);
    const float b2 = (float)(j->H[7] * y + j->H[8]);
    for (int x = 0; x < S; x++) {
        float sx0 = b0 + h0 * (float)x, sy0 = b1 + h3 * (float)x;
        if (!affine) {
            const float iw = 1 / (b2 + h6 * (float)x);
            sx0 *= iw, sy0 *= iw;
        }
        int x0, y0, x1, y1;
        float fx, fy, v[3];
        if (sx0 >= 0 && sy0 >= 0 && sx0 < (float)(w - 1) && sy0 < (float)(h - 1)) { /* inside: no reflection */
            x0 = (int)sx0, y0 = (int)sy0, x1 = x0 + 1, y1 = y0 + 1;
            fx = sx0 - (float)x0, fy = sy0 - (float)y0;
        } else {
            const float sx = aug_reflect(sx0, w), sy = aug_reflect(sy0, h);
            x0 = (int)sx, y0 = (int)sy, x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            fx = sx - (float)x0, fy = sy - (float)y0;
        }
        const uint8_t *p00 = src->rgb + (size_t)y0 * stride + (size_t)x0 * 3, *p01 = src->rgb + (size_t)y0 * stride + (size_t)x1 * 3;
        const uint8_t *p10 = src->rgb + (size_t)y1 * stride + (size_t)x0 * 3, *p11 = src->rgb + (size_t)y1 * stride + (size_t)x1 * 3;
        for (int c = 0; c < 3; c++)
            v[c] = (1 - fy) * ((1 - fx) * j->lut[c][p00[c]] + fx * j->lut[c][p01[c]]) +
                   fy * ((1 - fx) * j->lut[c][p10[c]] + fx * j->lut[c][p11[c]]);
        if (j->bg) {
            const float a = sample_zero(j->m->alpha, w, h, sx0, sy0) * (1.0f / 255);
            if (a < 1) {
                float dark = 1;
                if (j->shadow > 0) {
                    float sh = sample_zero(j->m->shadow, j->m->sw, j->m->sh, (sx0 - j->sdx - 0.5f * (F - 1)) / F,
                                           (sy0 - j->sdy - 0.5f * (F - 1)) / F);
                    dark = 1 - j->shadow * sh * (1.0f / 255);
                }
                const uint8_t *b = j->bg + ((size_t)y * S + x) * 3;
                for (int c = 0; c < 3; c++) v[c] = a * v[c] + (1 - a) * dark * j->lut[c][b[c]];
            }
        }
        float *q = o + (size_t)x * 3;
        if (j->color) {
            for (int c = 0; c < 3; c++) {
                float t = j->M[c * 3] * v[0] + j->M[c * 3 + 1] * v[1] + j->M[c * 3 + 2] * v[2] + j->off[c];
                q[c] = t < 0 ? 0 : t > 1 ? 1 : t;
            }
        } else {
            q[0] = v[0], q[1] = v[1], q[2] = v[2];
        }
    }
}

/* ---------------------------------------------------------------- the passes after the render */

/* separable Gaussian blur of S x S x 3 values (edges clamped): rows through a padded copy,
 * then columns as weighted sums of whole rows; tmp[S * S * 3 + (S + 32) * 3] */
static void blur_pass(float *v, int S, float sigma, float *tmp) {
    int r = (int)ceilf(2.5f * sigma);
    if (r < 1) return;
    if (r > 16) r = 16;
    float k[33], sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = expf(-0.5f * (float)(i * i) / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
    const size_t row = (size_t)S * 3;
    float *pad = tmp + (size_t)S * row;
    for (int y = 0; y < S; y++) {
        float *line = v + (size_t)y * row;
        for (int i = -r; i < S + r; i++) {
            int q = i < 0 ? 0 : i >= S ? S - 1 : i;
            for (int c = 0; c < 3; c++) pad[(i + r) * 3 + c] = line[q * 3 + c];
        }
        for (size_t i = 0; i < row; i++) {
            float a = 0;
            for (int t = 0; t <= 2 * r; t++) a += k[t] * pad[i + (size_t)t * 3];
            line[i] = a;
        }
    }
    memcpy(tmp, v, sizeof(float) * (size_t)S * row);
    for (int y = 0; y < S; y++) {
        float *out = v + (size_t)y * row;
        memset(out, 0, sizeof(float) * row);
        for (int t = -r; t <= r; t++) {
            int q = y + t < 0 ? 0 : y + t >= S ? S - 1 : y + t;
            const float *in = tmp + (size_t)q * row, kt = k[t + r];
            for (size_t i = 0; i < row; i++) out[i] += kt * in[i];
        }
    }
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} jpeg_trap;

static void jpeg_trap_exit(j_common_ptr c) { longjmp(((jpeg_trap *)c->err)->jb, 1); }

/* the S x S x 3 values in [0, 1] through JPEG at quality q (libjpeg in memory, the project's decoder) */
static int jpeg_pass(float *v, int S, int q) {
    const size_t n = (size_t)S * S * 3;
    uint8_t *px = malloc(n);
    if (!px) return sn_error("out of memory for JPEG re-compression");
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(v[i] * 255 + 0.5f);
    struct jpeg_compress_struct ci;
    jpeg_trap err;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_trap_exit;
    if (setjmp(err.jb)) {
        jpeg_destroy_compress(&ci);
        free(buf);
        free(px);
        return sn_error("JPEG re-compression failed");
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)S;
    ci.image_height = (JDIMENSION)S;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, q, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * S * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(px);
    image im;
    int r = image_decode(buf, len, "re-compressed sample", &im);
    free(buf);
    if (r < 0) return -1;
    for (size_t i = 0; i < n; i++) v[i] = im.rgb[i] * (1.0f / 255);
    image_free(&im);
    return 0;
}

/* the box (shares of the side) filled with keyed uniform noise */
static void erase_pass(float *v, int S, const float box[4], uint64_t seed, uint64_t key) {
    int x0 = (int)(box[0] * S), y0 = (int)(box[1] * S), x1 = (int)((box[0] + box[2]) * S), y1 = (int)((box[1] + box[3]) * S);
    const uint64_t stream = rng_mix(key) ^ 0x65726173ull;
    for (int y = y0; y < y1 && y < S; y++)
        for (int x = x0; x < x1 && x < S; x++)
            for (int c = 0; c < 3; c++) v[((size_t)y * S + x) * 3 + c] = rng_uniform(seed, stream, ((uint64_t)y * S + x) * 3 + c);
}

int aug_render(const image *src, const matte_map *m, const aug_params *p, const aug_shift *s, const aug_opts *o,
               uint64_t seed, int S, const float mean[3], const float std_[3], float *out) {
    render_job *j = malloc(sizeof *j);
    float *tmp = s->blur > 0 ? malloc(sizeof(float) * ((size_t)S * S * 3 + (size_t)(S + 32) * 3)) : NULL;
    const bool bg = s->bg && m && m->ok && m->w == src->w && m->h == src->h;
    uint8_t *bgbuf = bg ? malloc((size_t)S * S * 3) : NULL;
    if (!j || (s->blur > 0 && !tmp) || (bg && !bgbuf)) {
        free(j);
        free(tmp);
        free(bgbuf);
        return sn_error("out of memory rendering a %dx%d sample", S, S);
    }
    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    aug_lut(p, zero, one, j->lut);
    shift_map(p, s, bg ? s->bg_scale : 1, src->w, src->h, S, j->H);
    j->src = src;
    j->m = m;
    j->bg = bgbuf;
    j->S = S;
    const float short_side = (float)(src->w < src->h ? src->w : src->h);
    j->shadow = bg ? s->shadow : 0;
    j->sdx = s->shadow_dx * short_side;
    j->sdy = s->shadow_dy * short_side;
    j->color = s->color;
    colour_matrix(s, j->M, j->off);
    if (bg) bg_draw(o->bg_lib, o->bg_photo_p, seed, s->key, S, S, bgbuf);
    for (int y = 0; y < S; y++) render_row(j, y, out + (size_t)y * S * 3);
    int r = 0;
    if (s->blur > 0) blur_pass(out, S, s->blur, tmp);
    if (s->jpeg_q > 0) r = jpeg_pass(out, S, s->jpeg_q);
    if (s->erase) erase_pass(out, S, s->erase_box, seed, s->key);
    const size_t n = (size_t)S * S;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) out[i * 3 + c] = (out[i * 3 + c] - mean[c]) / std_[c];
    free(j);
    free(tmp);
    free(bgbuf);
    return r;
}
