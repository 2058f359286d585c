/* pool.c - max / average / global / concat pooling on NHWC, vectorised over channels.
 * Backward passes are in "gather" form (each dx element is summed by one thread in a fixed
 * order), so they are parallel over (image, row) and deterministic. */
#include "kernels/pool.h"
#include "core/error.h"
#include <math.h>
#include <stdbool.h>
#include <string.h>

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

int pool_desc_init(pool_desc *d) {
    if (d->h <= 0 || d->w <= 0 || d->c <= 0 || d->kh <= 0 || d->kw <= 0)
        return sn_error("pool: sizes must be positive (h %d w %d c %d kernel %dx%d)", d->h, d->w, d->c, d->kh, d->kw);
    if (d->sh <= 0 || d->sw <= 0) return sn_error("pool: stride %dx%d must be positive", d->sh, d->sw);
    if (d->pt < 0 || d->pb < 0 || d->pl < 0 || d->pr < 0)
        return sn_error("pool: negative padding (%d %d %d %d)", d->pt, d->pb, d->pl, d->pr);
    if (d->pt >= d->kh || d->pb >= d->kh || d->pl >= d->kw || d->pr >= d->kw)
        return sn_error("pool: padding (%d %d %d %d) must be smaller than the window %dx%d", d->pt, d->pb, d->pl,
                        d->pr, d->kh, d->kw);
    int eh = d->h + d->pt + d->pb - d->kh, ew = d->w + d->pl + d->pr - d->kw;
    if (eh < 0 || ew < 0)
        return sn_error("pool: window %dx%d larger than padded input %dx%d", d->kh, d->kw, d->h + d->pt + d->pb,
                        d->w + d->pl + d->pr);
    d->oh = eh / d->sh + 1;
    d->ow = ew / d->sw + 1;
    return 0;
}

/* output range [*o0, *o1) whose windows (start o*s - p, length k) contain input position i */
static void out_range(int i, int p, int k, int s, int on, int *o0, int *o1) {
    int t = i + p;                       /* o*s <= t <= o*s + k - 1 */
    int lo = t - k + 1 <= 0 ? 0 : (t - k + 1 + s - 1) / s;
    int hi = t / s + 1;
    *o0 = imax(0, lo);
    *o1 = imin(on, hi);
}

/* v = act(x*scale + shift) when scale is given (a batch norm and activation applied on the fly,
 * bitwise as batchnorm_apply), else x */
static inline float pre(float x, float scale, float shift, sn_act act) { return act_value(act, x * scale + shift); }

static void maxpool_fwd(const pool_desc *d, int n, const float *x, const float *scale, const float *shift, sn_act act,
                        float *y, int32_t *argmax) {
    int C = d->c;
    long rows = (long)n * d->oh;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r / d->oh), oy = (int)(r % d->oh);
        const float *xi = x + (long)i * d->h * d->w * C;
        int y0 = oy * d->sh - d->pt, ky0 = imax(0, -y0), ky1 = imin(d->kh, d->h - y0);
        for (int ox = 0; ox < d->ow; ox++) {
            float *restrict yp = y + (r * d->ow + ox) * C;
            int32_t *restrict ap = argmax + (r * d->ow + ox) * C;
            int x0 = ox * d->sw - d->pl, kx0 = imax(0, -x0), kx1 = imin(d->kw, d->w - x0);
            int32_t first = (y0 + ky0) * d->w + x0 + kx0;
            for (int c = 0; c < C; c++) {
                yp[c] = -INFINITY;
                ap[c] = first;
            }
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = kx0; kx < kx1; kx++) {
                    int32_t idx = (y0 + ky) * d->w + x0 + kx;
                    const float *restrict xp = xi + (long)idx * C;
                    for (int c = 0; c < C; c++) {
                        float v = scale ? pre(xp[c], scale[c], shift[c], act) : xp[c];
                        if (v > yp[c] || v != v) { /* NaN propagates, as PyTorch */
                            yp[c] = v;
                            ap[c] = idx;
                        }
                    }
                }
        }
    }
}

void maxpool_forward(const pool_desc *d, int n, const float *x, float *y, int32_t *argmax) {
    maxpool_fwd(d, n, x, NULL, NULL, ACT_NONE, y, argmax);
}

void maxpool_forward_bn_act(const pool_desc *d, int n, const float *x, const float *scale, const float *shift, sn_act act,
                            float *y, int32_t *argmax) {
    maxpool_fwd(d, n, x, scale, shift, act, y, argmax);
}

/* gathered gradient of input row r (image i, row iy) of channel block: g[ix*C + c] for all ix */
static void gather_row(const pool_desc *d, long r, const float *dy, const int32_t *argmax, float *g) {
    int C = d->c;
    int i = (int)(r / d->h), iy = (int)(r % d->h), oy0, oy1;
    out_range(iy, d->pt, d->kh, d->sh, d->oh, &oy0, &oy1);
    for (int ix = 0; ix < d->w; ix++) {
        int ox0, ox1;
        out_range(ix, d->pl, d->kw, d->sw, d->ow, &ox0, &ox1);
        float *restrict gp = g + (long)ix * C;
        int32_t idx = iy * d->w + ix;
        for (int c = 0; c < C; c++) gp[c] = 0.0f;
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = ox0; ox < ox1; ox++) {
                long o = (((long)i * d->oh + oy) * d->ow + ox) * C;
                const float *restrict gg = dy + o;
                const int32_t *restrict ap = argmax + o;
                for (int c = 0; c < C; c++) gp[c] += ap[c] == idx ? gg[c] : 0.0f;
            }
    }
}

int maxpool_bn_act_backward(const pool_desc *d, int n, const float *dy, const int32_t *argmax, sn_act act,
                            const float *scale, const float *shift, const double *mu, const double *is, int train,
                            const float *gamma, float *x, float *dgamma, float *dbeta) {
    const int C = d->c;
    const long rows = (long)n * d->h, m = rows * d->w;
    /* fixed blocks of rows (independent of the thread count): deterministic sums */
    long br = (rows + 63) / 64;
    int nb = (int)((rows + br - 1) / br);
    double *part = sn_calloc(sizeof(double) * 2 * (size_t)nb * C, "max-pool backward sums");
    float *rowbuf = sn_alloc(sizeof(float) * (size_t)d->w * C * nb, "max-pool backward rows");
    float *k = sn_alloc(sizeof(float) * 4 * C, "batchnorm backward coefficients");
    if (!part || !rowbuf || !k) {
        sn_free(part);
        sn_free(rowbuf);
        sn_free(k);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        double *s1 = part + (size_t)2 * b * C, *s2 = s1 + C;
        float *g = rowbuf + (size_t)b * d->w * C;
        for (long r = b * br; r < (b + 1) * br && r < rows; r++) {
            gather_row(d, r, dy, argmax, g);
            for (int px = 0; px < d->w; px++) { /* per channel, elements in row order */
                const float *restrict xr = x + (r * d->w + px) * C, *restrict gr = g + (long)px * C;
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float v = xr[c] * scale[c] + shift[c];
                    float gv = act_passes(act, v) ? gr[c] : 0.0f;
                    s1[c] += gv;
                    s2[c] += (double)gv * ((double)xr[c] - mu[c]);
                }
            }
        }
    }
    for (int c = 0; c < C; c++) {
        double a1 = 0, a2 = 0;
        for (int b = 0; b < nb; b++) {
            a1 += part[(size_t)2 * b * C + c];
            a2 += part[(size_t)2 * b * C + C + c];
        }
        double a = (gamma ? gamma[c] : 1.0) * is[c];
        if (dgamma) dgamma[c] += (float)(a2 * is[c]);
        if (dbeta) dbeta[c] += (float)a1;
        k[c] = (float)a;
        k[C + c] = (float)(train ? -a * is[c] * is[c] * a2 / m : 0.0);
        k[2 * C + c] = (float)(train ? -a * a1 / m : 0.0);
        k[3 * C + c] = (float)mu[c];
    }
    const float *A = k, *B = k + C, *Cc = k + 2 * C, *M = k + 3 * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        float *g = rowbuf + (size_t)b * d->w * C;
        for (long r = b * br; r < (b + 1) * br && r < rows; r++) {
            gather_row(d, r, dy, argmax, g);
            for (int px = 0; px < d->w; px++) {
                float *restrict xr = x + (r * d->w + px) * C;
                const float *restrict gr = g + (long)px * C;
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float v = xr[c] * scale[c] + shift[c];
                    float gv = act_passes(act, v) ? gr[c] : 0.0f;
                    xr[c] = A[c] * gv + (B[c] * (xr[c] - M[c]) + Cc[c]);
                }
            }
        }
    }
    sn_free(k);
    sn_free(rowbuf);
    sn_free(part);
    return 0;
}

void maxpool_backward(const pool_desc *d, int n, const float *dy, const int32_t *argmax, float *dx) {
    int C = d->c;
    long rows = (long)n * d->h;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r / d->h), iy = (int)(r % d->h), oy0, oy1;
        out_range(iy, d->pt, d->kh, d->sh, d->oh, &oy0, &oy1);
        for (int ix = 0; ix < d->w; ix++) {
            int ox0, ox1;
            out_range(ix, d->pl, d->kw, d->sw, d->ow, &ox0, &ox1);
            float *restrict dxp = dx + (r * d->w + ix) * C;
            int32_t idx = iy * d->w + ix;
            for (int oy = oy0; oy < oy1; oy++)
                for (int ox = ox0; ox < ox1; ox++) {
                    long o = (((long)i * d->oh + oy) * d->ow + ox) * C;
                    const float *restrict g = dy + o;
                    const int32_t *restrict ap = argmax + o;
                    for (int c = 0; c < C; c++) dxp[c] += ap[c] == idx ? g[c] : 0.0f;
                }
        }
    }
}

/* divisor of the window starting at (y0, x0) */
static float avg_div(const pool_desc *d, int y0, int x0) {
    int a, b;
    if (d->count_include_pad) {
        a = imin(y0 + d->kh, d->h + d->pb) - y0;
        b = imin(x0 + d->kw, d->w + d->pr) - x0;
    } else {
        a = imin(y0 + d->kh, d->h) - imax(y0, 0);
        b = imin(x0 + d->kw, d->w) - imax(x0, 0);
    }
    return a > 0 && b > 0 ? (float)(a * b) : 0.0f;
}

void avgpool_forward(const pool_desc *d, int n, const float *x, float *y) {
    int C = d->c;
    long rows = (long)n * d->oh;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r / d->oh), oy = (int)(r % d->oh);
        const float *xi = x + (long)i * d->h * d->w * C;
        int y0 = oy * d->sh - d->pt, ky0 = imax(0, -y0), ky1 = imin(d->kh, d->h - y0);
        for (int ox = 0; ox < d->ow; ox++) {
            float *restrict yp = y + (r * d->ow + ox) * C;
            int x0 = ox * d->sw - d->pl, kx0 = imax(0, -x0), kx1 = imin(d->kw, d->w - x0);
            float dv = avg_div(d, y0, x0), inv = dv > 0 ? 1.0f / dv : 0.0f;
            for (int c = 0; c < C; c++) yp[c] = 0.0f;
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = kx0; kx < kx1; kx++) {
                    const float *restrict xp = xi + ((long)(y0 + ky) * d->w + x0 + kx) * C;
                    for (int c = 0; c < C; c++) yp[c] += xp[c];
                }
            for (int c = 0; c < C; c++) yp[c] *= inv;
        }
    }
}

void avgpool_backward(const pool_desc *d, int n, const float *dy, float *dx) {
    int C = d->c;
    long rows = (long)n * d->h;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r / d->h), iy = (int)(r % d->h), oy0, oy1;
        out_range(iy, d->pt, d->kh, d->sh, d->oh, &oy0, &oy1);
        for (int ix = 0; ix < d->w; ix++) {
            int ox0, ox1;
            out_range(ix, d->pl, d->kw, d->sw, d->ow, &ox0, &ox1);
            float *restrict dxp = dx + (r * d->w + ix) * C;
            for (int oy = oy0; oy < oy1; oy++)
                for (int ox = ox0; ox < ox1; ox++) {
                    float dv = avg_div(d, oy * d->sh - d->pt, ox * d->sw - d->pl);
                    if (dv <= 0) continue;
                    float inv = 1.0f / dv;
                    const float *restrict g = dy + (((long)i * d->oh + oy) * d->ow + ox) * C;
                    for (int c = 0; c < C; c++) dxp[c] += g[c] * inv;
                }
        }
    }
}

void maxpool_forward_ref(const pool_desc *d, int n, const float *x, float *y, int32_t *argmax) {
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int c = 0; c < d->c; c++) {
                    float best = -INFINITY;
                    int32_t bi = -1;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++) {
                            int iy = oy * d->sh - d->pt + ky, ix = ox * d->sw - d->pl + kx;
                            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
                            float v = x[(((long)i * d->h + iy) * d->w + ix) * d->c + c];
                            if (bi < 0 || v > best || (v != v && best == best)) {
                                best = v;
                                bi = iy * d->w + ix;
                            }
                        }
                    long o = (((long)i * d->oh + oy) * d->ow + ox) * d->c + c;
                    y[o] = best;
                    argmax[o] = bi;
                }
}

void avgpool_forward_ref(const pool_desc *d, int n, const float *x, float *y) {
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int c = 0; c < d->c; c++) {
                    double s = 0;
                    int cnt = 0;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++) {
                            int iy = oy * d->sh - d->pt + ky, ix = ox * d->sw - d->pl + kx;
                            if (iy >= d->h + d->pb || ix >= d->w + d->pr) continue; /* beyond the padding */
                            if (d->count_include_pad) cnt++;
                            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
                            if (!d->count_include_pad) cnt++;
                            s += x[(((long)i * d->h + iy) * d->w + ix) * d->c + c];
                        }
                    y[(((long)i * d->oh + oy) * d->ow + ox) * d->c + c] = cnt ? (float)(s / cnt) : 0.0f;
                }
}

#define CB 64 /* channel block */

void global_avgpool_forward(int n, int hw, int c, const float *x, float *y) {
    int nb = (c + CB - 1) / CB;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int b = 0; b < nb; b++) {
            int c0 = b * CB, cn = imin(CB, c - c0);
            double acc[CB] = {0};
            for (int p = 0; p < hw; p++) {
                const float *xp = x + ((long)i * hw + p) * c + c0;
                for (int j = 0; j < cn; j++) acc[j] += xp[j];
            }
            for (int j = 0; j < cn; j++) y[(long)i * c + c0 + j] = (float)(acc[j] / hw);
        }
}

void global_avgpool_backward(int n, int hw, int c, const float *dy, float *dx) {
    float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            float *restrict dxp = dx + ((long)i * hw + p) * c;
            const float *restrict g = dy + (long)i * c;
            for (int j = 0; j < c; j++) dxp[j] += g[j] * inv;
        }
}

void concatpool_forward(int n, int hw, int c, const float *x, float *y, int32_t *argmax) {
    int nb = (c + CB - 1) / CB;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int b = 0; b < nb; b++) {
            int c0 = b * CB, cn = imin(CB, c - c0);
            double acc[CB] = {0};
            float mx[CB];
            int32_t am[CB];
            for (int j = 0; j < cn; j++) {
                mx[j] = -INFINITY;
                am[j] = 0;
            }
            for (int p = 0; p < hw; p++) {
                const float *xp = x + ((long)i * hw + p) * c + c0;
                for (int j = 0; j < cn; j++) {
                    float v = xp[j];
                    acc[j] += v;
                    if (v > mx[j] || v != v) {
                        mx[j] = v;
                        am[j] = p;
                    }
                }
            }
            for (int j = 0; j < cn; j++) {
                y[(long)i * 2 * c + c0 + j] = mx[j];
                y[(long)i * 2 * c + c + c0 + j] = (float)(acc[j] / hw);
                argmax[(long)i * c + c0 + j] = am[j];
            }
        }
}

void concatpool_backward(int n, int hw, int c, const float *dy, const int32_t *argmax, float *dx) {
    float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            float *restrict dxp = dx + ((long)i * hw + p) * c;
            const float *restrict gm = dy + (long)i * 2 * c, *restrict ga = gm + c;
            const int32_t *restrict am = argmax + (long)i * c;
            for (int j = 0; j < c; j++) dxp[j] += ga[j] * inv + (am[j] == p ? gm[j] : 0.0f);
        }
}
