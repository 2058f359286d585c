/* pool.c - max / average / global / concat pooling on NHWC, vectorised over channels.
 * Backward passes are in "gather" form (each dx element is summed by one thread in a fixed
 * order), so they are parallel over (image, row) and deterministic. */
#include "kernels/pool.h"
#include "core/error.h"
#include <math.h>
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

void maxpool_forward(const pool_desc *d, int n, const float *x, float *y, int32_t *argmax) {
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
                        float v = xp[c];
                        if (v > yp[c] || v != v) { /* NaN propagates, as PyTorch */
                            yp[c] = v;
                            ap[c] = idx;
                        }
                    }
                }
        }
    }
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
