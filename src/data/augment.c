/* augment.c - one affine warp per image (bilinear, reflection padding), lighting through a
 * table, normalisation.  See augment.h. */
#include "data/augment.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/augment_internal.h"

const float AUG_IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
const float AUG_IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};
const float AUG_HALF[3] = {0.5f, 0.5f, 0.5f};

void aug_defaults(aug_opts *o) {
    *o = (aug_opts){.do_flip = true, .max_rotate = 10, .max_zoom = 1.1f, .max_lighting = 0.2f, .p_affine = 0.75f,
                    .p_lighting = 0.75f, .bg_photo_p = 0.5f, .bg_min_scale = 0.5f, .rrc_min_scale = 0.35f, .rrc_ratio = 4.0f / 3,
                    .persp = 0.2f, .hue = 0.05f, .saturation = 0.4f, .contrast = 0.3f, .blur_sigma = 1.5f,
                    .jpeg_min_q = 30, .erase_max = 0.25f};
}

void aug_identity(aug_params *p) {
    *p = (aug_params){.angle = 0, .zoom = 1, .zoom_x = 0.5f, .zoom_y = 0.5f, .flip = false, .crop_x = 0.5f,
                      .crop_y = 0.5f, .brightness = 0.5f, .contrast = 1};
}

void aug_draw(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p) {
    uint64_t stream = rng_mix(epoch ^ 0xA06u) ^ 0x61756700ull, base = item * 16;
#define U(k) rng_uniform(seed, stream, base + (k))
    aug_identity(p);
    p->flip = o->do_flip && U(0) < 0.5f;
    if (o->max_rotate > 0 && U(1) < o->p_affine) p->angle = (2 * U(2) - 1) * o->max_rotate;
    if (o->max_zoom > 1 && U(3) < o->p_affine) {
        p->zoom = 1 + U(4) * (o->max_zoom - 1);
        p->zoom_x = U(5);
        p->zoom_y = U(6);
    }
    p->crop_x = U(7);
    p->crop_y = U(8);
    float ml = o->max_lighting;
    if (ml > 0 && ml < 1) {
        if (U(9) < o->p_lighting) p->brightness = 0.5f * (1 - ml) + U(10) * ml;
        if (U(11) < o->p_lighting) {
            float lo = logf(1 - ml), hi = -lo;
            p->contrast = expf(lo + U(12) * (hi - lo));
        }
    }
#undef U
}

void aug_matrix(const aug_params *p, int src_w, int src_h, int S, float m[6]) {
    /* output index x -> normalised u = (2x + 1)/S - 1 */
    double a = 2.0 / S, b = 1.0 / S - 1;
    /* theta = R . Z . F in normalised coordinates of the crop window */
    double f = p->flip ? -1 : 1;
    double iz = 1.0 / p->zoom, tzx = (2 * p->zoom_x - 1) * (1 - iz), tzy = (2 * p->zoom_y - 1) * (1 - iz);
    double th = p->angle * 3.14159265358979323846 / 180, c = cos(th), s = sin(th);
    /* Z . F: [iz*f, 0, tzx; 0, iz, tzy];  R . that */
    double t00 = c * iz * f, t01 = -s * iz, t02 = c * tzx - s * tzy;
    double t10 = s * iz * f, t11 = c * iz, t12 = s * tzx + c * tzy;
    /* crop window: side mm at (ox, oy); source index = ox + (q + 1) * mm / 2 - 0.5 */
    double mm = src_w < src_h ? src_w : src_h;
    double ox = p->crop_x * (src_w - mm), oy = p->crop_y * (src_h - mm), h = mm / 2;
    /* q = T [u v 1], u = a x + b, v = a y + b */
    m[0] = (float)(ox + h * (t00 * b + t01 * b + t02 + 1) - 0.5);
    m[1] = (float)(h * t00 * a);
    m[2] = (float)(h * t01 * a);
    m[3] = (float)(oy + h * (t10 * b + t11 * b + t12 + 1) - 0.5);
    m[4] = (float)(h * t10 * a);
    m[5] = (float)(h * t11 * a);
}

void aug_lut(const aug_params *p, const float mean[3], const float std_[3], float lut[3][256]) {
    bool lit = p->brightness != 0.5f || p->contrast != 1.0f;
    double lb = log(p->brightness / (1.0 - p->brightness));
    for (int v = 0; v < 256; v++) {
        double x = v / 255.0;
        if (lit) {
            double xc = x < 1e-6 ? 1e-6 : x > 1 - 1e-6 ? 1 - 1e-6 : x;
            double z = (log(xc / (1 - xc)) + lb) * p->contrast;
            x = 1 / (1 + exp(-z));
        }
        for (int c = 0; c < 3; c++) lut[c][v] = (float)((x - mean[c]) / std_[c]);
    }
}

static inline bool inside(float sx, float sy, int w, int h) {
    return sx >= 0 && sy >= 0 && sx < (float)(w - 1) && sy < (float)(h - 1);
}

void aug_warp(const image *src, const aug_params *p, int S, const float mean[3], const float std_[3], float *out) {
    float m[6], lut[3][256];
    aug_matrix(p, src->w, src->h, S, m);
    aug_lut(p, mean, std_, lut);
    const int w = src->w, h = src->h;
    const uint8_t *px = src->rgb;
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < S; y++) {
        const float bx = m[0] + m[2] * (float)y, by = m[3] + m[5] * (float)y, ax = m[1], ay = m[4];
        float *o = out + (size_t)y * S * 3;
        /* the interior span [lo, hi], where all four taps are inside: sx, sy are linear in x so the
         * set is an interval; found from the analytic bounds, then confirmed at its ends */
        double lo = 0, hi = S - 1;
        const double lim[2][3] = {{bx, ax, w - 1}, {by, ay, h - 1}};
        for (int k = 0; k < 2; k++) {
            double b0 = lim[k][0], a0 = lim[k][1], top = lim[k][2];
            if (fabs(a0) < 1e-12) {
                if (!(b0 >= 0 && b0 < top)) lo = 1, hi = 0;
            } else {
                double x1 = (0 - b0) / a0, x2 = (top - b0) / a0;
                if (x1 > x2) { double t = x1; x1 = x2; x2 = t; }
                if (x1 > lo) lo = ceil(x1);
                if (x2 < hi) hi = floor(x2);
            }
        }
        int ilo = lo < 0 ? 0 : (int)lo, ihi = hi > S - 1 ? S - 1 : (int)hi;
        if (lo > hi) ilo = S, ihi = S - 1;
        while (ilo <= ihi && !inside(bx + ax * (float)ilo, by + ay * (float)ilo, w, h)) ilo++;
        while (ihi >= ilo && !inside(bx + ax * (float)ihi, by + ay * (float)ihi, w, h)) ihi--;
        for (int x = 0; x < S; x++) {
            if (x == ilo) { /* fast interior loop: no bounds, no reflection */
                for (; x <= ihi; x++) {
                    const float sx = bx + ax * (float)x, sy = by + ay * (float)x;
                    const int x0 = (int)sx, y0 = (int)sy;
                    const float fx = sx - (float)x0, fy = sy - (float)y0;
                    const uint8_t *p0 = px + (size_t)y0 * stride + (size_t)x0 * 3, *p1 = p0 + stride;
                    const float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
                    for (int c = 0; c < 3; c++)
                        o[x * 3 + c] = w00 * lut[c][p0[c]] + w01 * lut[c][p0[3 + c]] + w10 * lut[c][p1[c]] +
                                       w11 * lut[c][p1[3 + c]];
                }
                if (x >= S) break;
            }
            float sx = aug_reflect(bx + ax * (float)x, w), sy = aug_reflect(by + ay * (float)x, h);
            int x0 = (int)sx, y0 = (int)sy;
            float fx = sx - (float)x0, fy = sy - (float)y0;
            int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            const uint8_t *p00 = px + (size_t)y0 * stride + (size_t)x0 * 3, *p01 = px + (size_t)y0 * stride + (size_t)x1 * 3;
            const uint8_t *p10 = px + (size_t)y1 * stride + (size_t)x0 * 3, *p11 = px + (size_t)y1 * stride + (size_t)x1 * 3;
            for (int c = 0; c < 3; c++)
                o[x * 3 + c] = (1 - fy) * ((1 - fx) * lut[c][p00[c]] + fx * lut[c][p01[c]]) +
                               fy * ((1 - fx) * lut[c][p10[c]] + fx * lut[c][p11[c]]);
        }
    }
}

int aug_center(const image *src, int S, const float mean[3], const float std_[3], float *out) {
    int s = src->w < src->h ? src->w : src->h;
    int w = src->w == s ? S : (int)lround((double)src->w * S / s), h = src->h == s ? S : (int)lround((double)src->h * S / s);
    if (w < S) w = S;
    if (h < S) h = S;
    image r = *src;
    bool owned = false;
    if (w != src->w || h != src->h) {
        if (image_resize(src, w, h, &r) < 0) return -1;
        owned = true;
    }
    float lut[3][256];
    aug_params id;
    aug_identity(&id);
    aug_lut(&id, mean, std_, lut);
    int x0 = (w - S) / 2, y0 = (h - S) / 2;
    for (int y = 0; y < S; y++) {
        const uint8_t *row = r.rgb + ((size_t)(y + y0) * w + x0) * 3;
        float *o = out + (size_t)y * S * 3;
        for (int i = 0; i < S * 3; i += 3)
            for (int c = 0; c < 3; c++) o[i + c] = lut[c][row[i + c]];
    }
    if (owned) image_free(&r);
    return 0;
}
